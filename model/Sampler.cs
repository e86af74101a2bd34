namespace Tune.Model;

/// <summary>How the next token is chosen: greedy at temperature 0, else temperature, top-k and top-p (nucleus).</summary>
public sealed record SamplingOptions(double Temperature = 0, double TopP = 1, int TopK = 0, int Seed = 0)
{
    public void Validate()
    {
        if (Temperature < 0 || double.IsNaN(Temperature)) throw new ArgumentException($"temperature must be >= 0, got {Temperature}");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"top_p must be in (0, 1], got {TopP}");
        if (TopK < 0) throw new ArgumentException($"top_k must be >= 0 (0 = off), got {TopK}");
    }
}

/// <summary>Picks token ids from float32 logits on the CPU, deterministically for a given seed.</summary>
public sealed class Sampler
{
    private readonly SamplingOptions _options;
    private readonly Random _random;

    public Sampler(SamplingOptions options)
    {
        options.Validate();
        _options = options;
        _random = new Random(options.Seed);
    }

    public int Next(ReadOnlySpan<float> logits)
    {
        if (_options.Temperature == 0) return ArgMax(logits);

        int[] order = Enumerable.Range(0, logits.Length).ToArray();
        float[] keys = logits.ToArray();
        Array.Sort(keys, order);
        Array.Reverse(order);
        int keep = _options.TopK > 0 ? Math.Min(_options.TopK, order.Length) : order.Length;

        double max = logits[order[0]];
        var probs = new double[keep];
        double sum = 0;
        for (int i = 0; i < keep; i++) sum += probs[i] = Math.Exp((logits[order[i]] - max) / _options.Temperature);
        double cumulative = 0;
        for (int i = 0; i < keep; i++)
        {
            cumulative += probs[i] / sum;
            if (cumulative >= _options.TopP) { keep = i + 1; break; }
        }

        double total = 0;
        for (int i = 0; i < keep; i++) total += probs[i];
        double u = _random.NextDouble() * total;
        for (int i = 0; i < keep; i++)
        {
            u -= probs[i];
            if (u <= 0) return order[i];
        }
        return order[keep - 1];
    }

    /// <summary>The first index of the largest value, so ties resolve the same way everywhere.</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }
}
