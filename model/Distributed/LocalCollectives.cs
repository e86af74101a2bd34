using static TorchSharp.torch;

namespace Tune.Model.Distributed;

/// <summary>A world of one rank: every collective is a copy or nothing. The default, with no native dependency.</summary>
public sealed class LocalCollectives : ICollectives
{
    public int Rank => 0;
    public int Size => 1;
    public string Description => "local (1 rank)";

    public long[] AllToAll(long[] send) => (long[])send.Clone();

    public void AllToAllRows(Tensor send, long[] sendRows, Tensor recv, long[] recvRows)
    {
        TensorMemory.CheckExchange(send, sendRows, recv, recvRows, 1);
        if (sendRows[0] != recvRows[0])
            throw new ArgumentException($"a single rank sends {sendRows[0]} rows to itself but expects {recvRows[0]}");
        recv.copy_(send);
    }

    public void AllReduceSum(Tensor tensor) => TensorMemory.CheckReducible(tensor);

    public void Broadcast(Tensor tensor, int root)
    {
        if (root != 0) throw new ArgumentOutOfRangeException(nameof(root), root, "a single rank can only broadcast from rank 0");
    }

    public void Barrier() { }

    public void Abort(int exitCode) => Environment.Exit(exitCode);

    public void Dispose() { }
}
