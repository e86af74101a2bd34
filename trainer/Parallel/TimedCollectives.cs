using System.Diagnostics;
using Tune.Model.Distributed;
using static TorchSharp.torch;

namespace Tune.Trainer.Parallel;

/// <summary>
/// Passes every call on and adds its wall time to <see cref="Elapsed"/>: the communication share of a step. The time
/// includes waiting inside a collective for a slower rank, so it is what a rank loses to communication, not transfer time.
/// </summary>
public sealed class TimedCollectives(ICollectives inner) : ICollectives
{
    public TimeSpan Elapsed { get; private set; }

    public int Rank => inner.Rank;
    public int Size => inner.Size;
    public string Description => inner.Description;

    public long[] AllToAll(long[] send)
    {
        long started = Stopwatch.GetTimestamp();
        long[] received = inner.AllToAll(send);
        Elapsed += Stopwatch.GetElapsedTime(started);
        return received;
    }

    public void AllToAllRows(Tensor send, long[] sendRows, Tensor recv, long[] recvRows) => Time(() => inner.AllToAllRows(send, sendRows, recv, recvRows));
    public void AllReduceSum(Tensor tensor) => Time(() => inner.AllReduceSum(tensor));
    public void Broadcast(Tensor tensor, int root) => Time(() => inner.Broadcast(tensor, root));
    public void Barrier() => Time(inner.Barrier);
    public void Abort(int exitCode) => inner.Abort(exitCode);
    public void Dispose() => inner.Dispose();

    private void Time(Action call)
    {
        long started = Stopwatch.GetTimestamp();
        call();
        Elapsed += Stopwatch.GetElapsedTime(started);
    }
}
