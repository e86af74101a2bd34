using static TorchSharp.torch;

namespace Tune.Model.Distributed;

/// <summary>
/// The collective operations expert-parallel training needs, over the ranks of one job. Every rank must make the same
/// calls in the same order (a rank that skips one leaves the others waiting forever), also with zero rows to send.
/// Tensors are exchanged in place through their storage, so they must be contiguous.
/// </summary>
public interface ICollectives : IDisposable
{
    int Rank { get; }
    int Size { get; }

    /// <summary>What the backend is, for logs and error messages ("local", "Open MPI 4.1.4", "NCCL 2.22.3").</summary>
    string Description { get; }

    /// <summary>
    /// <paramref name="send"/> holds Size equal blocks; block p goes to rank p. Returns the blocks received, block p
    /// from rank p. This is how ranks learn how many rows each peer is about to send.
    /// </summary>
    long[] AllToAll(long[] send);

    /// <summary>
    /// Rows (slices along dim 0) of <paramref name="send"/>: the first sendRows[0] go to rank 0, the next sendRows[1]
    /// to rank 1, …; <paramref name="recv"/> receives recvRows[p] rows from rank p, in rank order. Both tensors have the
    /// same dtype and row shape; any dtype moves bit for bit.
    /// </summary>
    void AllToAllRows(Tensor send, long[] sendRows, Tensor recv, long[] recvRows);

    /// <summary>Replaces <paramref name="tensor"/> (float32, float64 or int64) by its sum over all ranks.</summary>
    void AllReduceSum(Tensor tensor);

    /// <summary>Overwrites <paramref name="tensor"/> on every rank with its contents on <paramref name="root"/>.</summary>
    void Broadcast(Tensor tensor, int root);

    void Barrier();

    /// <summary>Ends every rank of the job at once with <paramref name="exitCode"/>: what a rank that failed calls, so
    /// that the others do not wait for it.</summary>
    void Abort(int exitCode);
}
