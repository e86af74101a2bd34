using TorchSharp;
using Tune.Formats;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>
/// Decoupled rotary embedding of DeepSeek-V2 with optional YaRN scaling (spec §2.4). Each adjacent pair
/// (x₂ᵢ, x₂ᵢ₊₁) of the checkpoint's layout is rotated by pos·inv_freq[i]: the HF code's permute + rotate_half is the
/// same rotation. Angles are built in float32 (bf16 angles are visibly wrong at long positions) and the rotation runs
/// in float32; the result is cast back to the input dtype.
/// </summary>
public sealed class YarnRope
{
    private readonly float[] _invFreq;

    /// <summary>cos/sin multiplier mscale(s, mscale) / mscale(s, mscale_all_dim); 1 for every released config.</summary>
    public double CosSinScale { get; }

    /// <summary>Attention softmax scale: q_head_dim^-0.5, times mscale(s, mscale_all_dim)² under YaRN.</summary>
    public double SoftmaxScale { get; }

    public int Dim { get; }

    public YarnRope(DeepSeekV2Config config)
    {
        Dim = config.QkRopeHeadDim;
        _invFreq = InverseFrequencies(Dim, config.RopeTheta, config.RopeScaling);
        SoftmaxScale = 1.0 / Math.Sqrt(config.QHeadDim);
        CosSinScale = 1.0;
        if (config.RopeScaling is { } s)
        {
            CosSinScale = Mscale(s.Factor, s.Mscale) / Mscale(s.Factor, s.MscaleAllDim);
            if (s.MscaleAllDim != 0)
            {
                double m = Mscale(s.Factor, s.MscaleAllDim);
                SoftmaxScale *= m * m;
            }
        }
    }

    public ReadOnlySpan<float> InverseFrequency => _invFreq;

    /// <summary>YaRN's attention magnitude correction: 0.1·m·ln(s) + 1 for s &gt; 1.</summary>
    public static double Mscale(double scale, double m) => scale <= 1 ? 1.0 : 0.1 * m * Math.Log(scale) + 1.0;

    public static float[] InverseFrequencies(int dim, double theta, RopeScaling? scaling)
    {
        int half = dim / 2;
        var extra = new double[half];
        for (int i = 0; i < half; i++) extra[i] = 1.0 / Math.Pow(theta, 2.0 * i / dim);
        if (scaling is null) return extra.Select(f => (float)f).ToArray();

        double s = scaling.Factor;
        // Dimension index at which a frequency completes `rotations` turns over the original context.
        double Correction(double rotations) =>
            dim * Math.Log(scaling.OriginalMaxPositionEmbeddings / (rotations * 2 * Math.PI)) / (2 * Math.Log(theta));
        double low = Math.Max(Math.Floor(Correction(scaling.BetaFast)), 0);
        double high = Math.Min(Math.Ceiling(Correction(scaling.BetaSlow)), dim - 1);
        if (low == high) high += 0.001;
        var inv = new float[half];
        for (int i = 0; i < half; i++)
        {
            double ramp = Math.Clamp((i - low) / (high - low), 0, 1);
            inv[i] = (float)(extra[i] / s * ramp + extra[i] * (1 - ramp));
        }
        return inv;
    }

    /// <summary>cos and sin of shape [T, Dim/2] (float32) for absolute positions start … start+T-1.</summary>
    public (Tensor Cos, Tensor Sin) Angles(long start, long count, Device device)
    {
        using var scope = NewDisposeScope();
        Tensor positions = arange(start, start + count, dtype: ScalarType.Float32, device: device);
        Tensor inv = tensor(_invFreq, device: device);
        Tensor angles = outer(positions, inv);
        Tensor cos = angles.cos(), sin = angles.sin();
        if (CosSinScale != 1.0)
        {
            cos = cos * CosSinScale;
            sin = sin * CosSinScale;
        }
        return (cos.MoveToOuterDisposeScope(), sin.MoveToOuterDisposeScope());
    }

    /// <summary>Rotates x [..., T, Dim] by the angles of <see cref="Angles"/> ([T, Dim/2]).</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        long[] shape = x.shape;
        long[] pairs = [.. shape[..^1], shape[^1] / 2, 2];
        Tensor p = x.to(ScalarType.Float32).reshape(pairs);
        Tensor even = p.select(-1, 0), odd = p.select(-1, 1);
        Tensor rotated = stack([even * cos - odd * sin, even * sin + odd * cos], -1);
        return rotated.reshape(shape).to(x.dtype).MoveToOuterDisposeScope();
    }
}
