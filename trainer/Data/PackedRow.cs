namespace Tune.Trainer.Data;

/// <summary>
/// One training row of exactly the sequence length. <see cref="SegmentIds"/> number the document pieces of the row
/// 0, 1, 2, ... in order, and padding (at the end of a row only) is one more segment of its own: a token may attend
/// to earlier tokens of its own segment only, which is the block-diagonal causal mask. <see cref="LossMask"/> is
/// true where the token is a training target; padding is never one.
/// </summary>
public sealed record PackedRow(int[] Ids, bool[] LossMask, int[] SegmentIds)
{
    public const int IgnoreIndex = -100;

    public int Length => Ids.Length;

    /// <summary>
    /// What the logits at each position must predict: the next token when it is a target of the same segment,
    /// else <see cref="IgnoreIndex"/>. The first token of a segment is never predicted (nothing before it in the row
    /// belongs to its document), and the last position has no next token.
    /// </summary>
    public int[] NextTokenLabels()
    {
        var labels = new int[Ids.Length];
        for (int t = 0; t < Ids.Length; t++)
        {
            bool predicts = t + 1 < Ids.Length && SegmentIds[t + 1] == SegmentIds[t] && LossMask[t + 1];
            labels[t] = predicts ? Ids[t + 1] : IgnoreIndex;
        }
        return labels;
    }

    /// <summary>Rotary positions that restart at 0 with every segment, so a packed document sees the positions it would alone.</summary>
    public int[] PositionIds()
    {
        var positions = new int[Ids.Length];
        for (int t = 1; t < Ids.Length; t++)
            positions[t] = SegmentIds[t] == SegmentIds[t - 1] ? positions[t - 1] + 1 : 0;
        return positions;
    }
}
