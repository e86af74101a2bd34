namespace Tune.Trainer.Data;

/// <summary>
/// SplitMix64 (Steele, Lea and Flood, 2014). Shuffles and FIM split points must be the same on every machine and
/// .NET version, or a resumed run would see other rows; System.Random's seeded sequence is an implementation detail.
/// </summary>
internal struct DeterministicRandom
{
    private ulong _state;

    private DeterministicRandom(ulong state) => _state = state;

    /// <summary>
    /// An independent generator for one purpose (<paramref name="stream"/>) and one item of it (a document, an
    /// epoch), so that a draw never depends on how many draws other items made before it.
    /// </summary>
    public static DeterministicRandom For(long seed, long stream, long index) =>
        new(Finalize(Finalize(Finalize((ulong)seed) ^ (ulong)stream) ^ (ulong)index));

    public ulong NextUInt64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Finalize(_state);
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [0, <paramref name="exclusiveMax"/>), without modulo bias.</summary>
    public int NextInt(int exclusiveMax)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(exclusiveMax);
        ulong bound = (ulong)exclusiveMax;
        ulong threshold = (0UL - bound) % bound;
        while (true)
        {
            ulong r = NextUInt64();
            if (r >= threshold) return (int)(r % bound);
        }
    }

    /// <summary>Fisher-Yates, in place.</summary>
    public void Shuffle(Span<int> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    private static ulong Finalize(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
