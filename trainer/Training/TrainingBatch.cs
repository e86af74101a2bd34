using TorchSharp;
using Tune.Trainer.Data;
using static TorchSharp.torch;

namespace Tune.Trainer.Training;

/// <summary>
/// Packed rows as model inputs: ids [B, T], next-token targets [B, T] (-100 where nothing is learned) and the
/// block-diagonal causal mask [B, 1, T, T] that keeps packed documents from attending to each other.
/// </summary>
public sealed record TrainingBatch(Tensor Ids, Tensor Targets, Tensor Mask, long TargetCount) : IDisposable
{
    public const long Ignore = -100;

    /// <summary>
    /// Token t learns to predict token t+1 when t+1 is a training target of the same document; the last position of
    /// a row and of each document learns nothing.
    /// </summary>
    public static TrainingBatch From(IReadOnlyList<PackedRow> rows, Device device)
    {
        int b = rows.Count, t = rows[0].Ids.Length;
        var ids = new long[b * t];
        var targets = new long[b * t];
        var allowed = new bool[b * t * t];
        long count = 0;
        for (int r = 0; r < b; r++)
        {
            PackedRow row = rows[r];
            if (row.Ids.Length != t) throw new ArgumentException("rows of a batch must have the same length");
            for (int i = 0; i < t; i++)
            {
                ids[r * t + i] = row.Ids[i];
                bool learn = i + 1 < t && row.SegmentIds[i + 1] == row.SegmentIds[i] && row.LossMask[i + 1];
                targets[r * t + i] = learn ? row.Ids[i + 1] : Ignore;
                if (learn) count++;
                for (int j = i; j >= 0 && row.SegmentIds[j] == row.SegmentIds[i]; j--) allowed[(r * t + i) * t + j] = true;
            }
        }
        return new TrainingBatch(
            tensor(ids, [b, t], device: device),
            tensor(targets, [b, t], device: device),
            tensor(allowed, [b, 1, t, t], device: device),
            count);
    }

    public void Dispose()
    {
        Ids.Dispose();
        Targets.Dispose();
        Mask.Dispose();
    }
}
