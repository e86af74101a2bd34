namespace Tune.Trainer.Data;

/// <summary>
/// Where a document is cut into prefix, middle and suffix: two positions drawn independently and uniformly from the
/// document's character boundaries 0..n, then sorted, as DeepSeek-Coder and StarCoder's FIM draw them (either part
/// may be empty). A boundary between the two halves of a surrogate pair is not a boundary: the cut would leave
/// half a character on each side, which has no UTF-8 encoding.
/// </summary>
internal readonly record struct FimSplit(int MiddleStart, int MiddleEnd)
{
    public static FimSplit Draw(string text, ref DeterministicRandom random)
    {
        int pairs = SurrogatePairs(text);
        int boundaries = text.Length + 1 - pairs;
        int a = Position(text, random.NextInt(boundaries), pairs);
        int b = Position(text, random.NextInt(boundaries), pairs);
        return a <= b ? new FimSplit(a, b) : new FimSplit(b, a);
    }

    private static int SurrogatePairs(string text)
    {
        int pairs = 0;
        for (int i = 1; i < text.Length; i++)
            if (char.IsHighSurrogate(text[i - 1]) && char.IsLowSurrogate(text[i])) pairs++;
        return pairs;
    }

    /// <summary>The char index of the <paramref name="boundary"/>-th boundary.</summary>
    private static int Position(string text, int boundary, int pairs)
    {
        if (pairs == 0) return boundary;
        int seen = 0;
        for (int i = 0; i <= text.Length; i++)
        {
            bool insidePair = i > 0 && i < text.Length && char.IsHighSurrogate(text[i - 1]) && char.IsLowSurrogate(text[i]);
            if (insidePair) continue;
            if (seen == boundary) return i;
            seen++;
        }
        throw new ArgumentOutOfRangeException(nameof(boundary), boundary, "past the last boundary");
    }
}
