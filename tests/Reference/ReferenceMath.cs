namespace Tune.Tests.Reference;

/// <summary>A weight stored [out, in] row-major, as HF stores nn.Linear weights (spec §2).</summary>
internal sealed record Matrix(int Rows, int Cols, double[] Data)
{
    public ReadOnlySpan<double> Row(int r) => Data.AsSpan(r * Cols, Cols);

    public double this[int r, int c] => Data[r * Cols + c];

    /// <summary>Linear(x, W) = x·Wᵀ; no linear layer in these checkpoints has a bias (spec §2).</summary>
    public double[] Apply(ReadOnlySpan<double> x)
    {
        if (x.Length != Cols)
            throw new ArgumentException($"input of length {x.Length} for a [{Rows}, {Cols}] weight");
        var y = new double[Rows];
        for (int r = 0; r < Rows; r++)
            y[r] = ReferenceMath.Dot(Row(r), x);
        return y;
    }
}

internal static class ReferenceMath
{
    public static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++)
            sum += a[i] * b[i];
        return sum;
    }

    /// <summary>w ⊙ x / sqrt(mean(x²) + eps) (spec §2.2 step 2.1).</summary>
    public static double[] RmsNorm(ReadOnlySpan<double> x, double[] w, double eps)
    {
        double inv = 1.0 / Math.Sqrt(Dot(x, x) / x.Length + eps);
        var y = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
            y[i] = w[i] * (x[i] * inv);
        return y;
    }

    public static double Silu(double x) => x / (1.0 + Math.Exp(-x));

    public static double[] Softmax(ReadOnlySpan<double> x)
    {
        double max = double.NegativeInfinity;
        foreach (double v in x)
            max = Math.Max(max, v);
        var p = new double[x.Length];
        double sum = 0;
        for (int i = 0; i < x.Length; i++)
            sum += p[i] = Math.Exp(x[i] - max);
        for (int i = 0; i < p.Length; i++)
            p[i] /= sum;
        return p;
    }

    /// <summary>y += a·x.</summary>
    public static void AddScaled(Span<double> y, double a, ReadOnlySpan<double> x)
    {
        for (int i = 0; i < y.Length; i++)
            y[i] += a * x[i];
    }

    /// <summary>Indices of the k largest values, largest first; ties go to the lower index.</summary>
    public static int[] TopK(double[] values, int k) =>
        Enumerable.Range(0, values.Length).OrderByDescending(i => values[i]).ThenBy(i => i).Take(k).ToArray();
}
