using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Tune.Quantize;

/// <summary>
/// ggml-quants.c <c>make_qx_quants</c> with rmse_type = 1 and no importance weights (what Q6_K uses): the symmetric
/// scale of one sub-block, searched over 19 candidates with weights x², and its levels L + nmax ∈ [0, 2·nmax).
/// An all-zero sub-block gets scale 0 and levels 0 (not nmax), as in ggml.
/// <para>As in <see cref="ScaleMinSearch"/>, the vector form runs eight sub-blocks side by side, one per lane,
/// with the scalar operation order, so both give the same bits.</para>
/// </summary>
internal static class ScaleSearch
{
    private const float GroupMaxEps = 1e-15f;

    public static float Search(ReadOnlySpan<float> x, int maxLevel, Span<byte> levels)
    {
        int n = x.Length;
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax)
            {
                amax = ax;
                max = x[i];
            }
        }
        if (amax < GroupMaxEps)
        {
            levels.Slice(0, n).Clear();
            return 0;
        }
        float iscale = -maxLevel / max;
        (float sumLX, float sumL2) = Sums(x, iscale, maxLevel);
        for (int i = 0; i < n; i++) levels[i] = (byte)(Level(iscale * x[i], maxLevel) + maxLevel);
        float scale = sumL2 != 0 ? sumLX / sumL2 : 0f;
        float best = scale * sumLX;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0) continue;
            iscale = -(maxLevel + 0.1f * step) / max;
            (sumLX, sumL2) = Sums(x, iscale, maxLevel);
            if (sumL2 > 0 && sumLX * sumLX > best * sumL2)
            {
                for (int i = 0; i < n; i++) levels[i] = (byte)(Level(iscale * x[i], maxLevel) + maxLevel);
                scale = sumLX / sumL2;
                best = scale * sumLX;
            }
        }
        return scale;
    }

    private static (float SumLX, float SumL2) Sums(ReadOnlySpan<float> x, float iscale, int maxLevel)
    {
        float sumLX = 0, sumL2 = 0;
        for (int i = 0; i < x.Length; i++)
        {
            int l = Level(iscale * x[i], maxLevel);
            float w = x[i] * x[i];
            sumLX += w * x[i] * l;
            sumL2 += w * l * l;
        }
        return (sumLX, sumL2);
    }

    private static int Level(float scaled, int maxLevel) =>
        Math.Max(-maxLevel, Math.Min(maxLevel - 1, GgmlRounding.NearestInt(scaled)));

    /// <summary><see cref="Search"/> for eight sub-blocks, lane k holding sub-block k; levels come back as floats.</summary>
    [SkipLocalsInit]
    public static Vector256<float> Search(ReadOnlySpan<Vector256<float>> x, int maxLevel, Span<Vector256<float>> levels)
    {
        int n = x.Length;
        Span<Vector256<float>> candidate = stackalloc Vector256<float>[n];
        Vector256<float> zero = Vector256<float>.Zero;
        Vector256<float> max = zero, amax = zero;
        for (int i = 0; i < n; i++)
        {
            Vector256<float> ax = Vector256.Abs(x[i]);
            Vector256<float> larger = Vector256.GreaterThan(ax, amax);
            amax = Vector256.ConditionalSelect(larger, ax, amax);
            max = Vector256.ConditionalSelect(larger, x[i], max);
        }
        Vector256<float> allZero = Vector256.LessThan(amax, Vector256.Create(GroupMaxEps));
        Vector256<float> offset = Vector256.Create((float)maxLevel);
        Vector256<float> iscale = Vector256.Create((float)-maxLevel) / max;
        (Vector256<float> sumLX, Vector256<float> sumL2) = Sums(x, iscale, maxLevel, levels);
        for (int i = 0; i < n; i++) levels[i] += offset;
        Vector256<float> scale = Vector256.ConditionalSelect(Vector256.Equals(sumL2, zero), zero, sumLX / sumL2);
        Vector256<float> best = scale * sumLX;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0) continue;
            iscale = Vector256.Create(-(maxLevel + 0.1f * step)) / max;
            (sumLX, sumL2) = Sums(x, iscale, maxLevel, candidate);
            Vector256<float> better = Vector256.GreaterThan(sumL2, zero) & Vector256.GreaterThan(sumLX * sumLX, best * sumL2);
            if (better.ExtractMostSignificantBits() == 0) continue;
            for (int i = 0; i < n; i++) levels[i] = Vector256.ConditionalSelect(better, candidate[i] + offset, levels[i]);
            Vector256<float> newScale = sumLX / sumL2;
            scale = Vector256.ConditionalSelect(better, newScale, scale);
            best = Vector256.ConditionalSelect(better, newScale * sumLX, best);
        }
        for (int i = 0; i < n; i++) levels[i] = Vector256.ConditionalSelect(allZero, zero, levels[i]);
        return Vector256.ConditionalSelect(allZero, zero, scale);
    }

    private static (Vector256<float> SumLX, Vector256<float> SumL2) Sums(ReadOnlySpan<Vector256<float>> x,
        Vector256<float> iscale, int maxLevel, Span<Vector256<float>> levels)
    {
        Vector256<int> low = Vector256.Create(-maxLevel), high = Vector256.Create(maxLevel - 1);
        Vector256<float> sumLX = Vector256<float>.Zero, sumL2 = Vector256<float>.Zero;
        for (int i = 0; i < x.Length; i++)
        {
            Vector256<float> l = Vector256.ConvertToSingle(
                Vector256.Max(low, Vector256.Min(high, GgmlRounding.NearestInt(iscale * x[i]))));
            levels[i] = l;
            Vector256<float> w = x[i] * x[i];
            sumLX += w * x[i] * l;
            sumL2 += w * l * l;
        }
        return (sumLX, sumL2);
    }
}
