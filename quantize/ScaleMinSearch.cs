using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Tune.Quantize;

/// <summary>
/// ggml-quants.c <c>make_qkx2_quants</c> (use_mad = false): the scale and min of one sub-block, chosen on a grid
/// of candidate scales by weighted least squares, with the levels L ∈ [0, nmax] that go with them.
/// <para>
/// Bytes must match ggml, so every sum runs sequentially in source order and no multiply-add is fused. The vector
/// form runs eight sub-blocks at once, one per lane (element i of every sub-block in one vector): each lane performs
/// exactly the scalar operation sequence, so both forms give the same bits.
/// </para>
/// </summary>
internal static class ScaleMinSearch
{
    /// <summary>The candidate grid of a K-quant: nmax, and iscale = (rmin + rdelta·k + nmax)/(max − min) for k = 0..steps.</summary>
    internal readonly record struct Grid(int MaxLevel, float RMin, float RDelta, int Steps);

    /// <returns>The scale; <paramref name="negatedMin"/> is −min (≥ 0), so w ≈ scale·L − negatedMin.</returns>
    public static float Search(ReadOnlySpan<float> x, ReadOnlySpan<float> weights, Grid grid, Span<byte> levels,
        Span<byte> candidate, out float negatedMin)
    {
        int n = x.Length;
        float min = x[0], max = x[0];
        float sumW = weights[0];
        float sumX = sumW * x[0];
        for (int i = 1; i < n; i++)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            sumW += weights[i];
            sumX += weights[i] * x[i];
        }
        if (min > 0) min = 0;
        if (max == min)
        {
            levels.Slice(0, n).Clear();
            negatedMin = -min;
            return 0;
        }
        float iscale = grid.MaxLevel / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++)
        {
            int l = Level(iscale * (x[i] - min), grid.MaxLevel);
            levels[i] = (byte)l;
            float diff = scale * l + min - x[i];
            bestError += weights[i] * (diff * diff);
        }
        for (int step = 0; step <= grid.Steps; step++)
        {
            // min is the best candidate's so far: ggml grids each step on the moved range.
            iscale = (grid.RMin + grid.RDelta * step + grid.MaxLevel) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; i++)
            {
                int l = Level(iscale * (x[i] - min), grid.MaxLevel);
                candidate[i] = (byte)l;
                float wl = weights[i] * l;
                sumL += wl;
                sumL2 += wl * l;
                sumXL += wl * x[i];
            }
            float det = sumW * sumL2 - sumL * sumL;
            if (det > 0)
            {
                float thisScale = (sumW * sumXL - sumX * sumL) / det;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
                if (thisMin > 0)
                {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float error = 0;
                for (int i = 0; i < n; i++)
                {
                    float diff = thisScale * candidate[i] + thisMin - x[i];
                    error += weights[i] * (diff * diff);
                }
                if (error < bestError)
                {
                    candidate.Slice(0, n).CopyTo(levels);
                    bestError = error;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        negatedMin = -min;
        return scale;
    }

    private static int Level(float scaled, int maxLevel) => Math.Max(0, Math.Min(maxLevel, GgmlRounding.NearestInt(scaled)));

    /// <summary>
    /// <see cref="Search"/> for eight sub-blocks, lane k holding sub-block k: <c>x[i]</c> and <c>weights[i]</c> are
    /// element i of each. Levels come back as floats (exact small integers).
    /// </summary>
    [SkipLocalsInit]
    public static Vector256<float> Search(ReadOnlySpan<Vector256<float>> x, ReadOnlySpan<Vector256<float>> weights,
        Grid grid, Span<Vector256<float>> levels, out Vector256<float> negatedMin)
    {
        int n = x.Length;
        Span<Vector256<float>> candidate = stackalloc Vector256<float>[n];
        Vector256<float> zero = Vector256<float>.Zero;
        Vector256<int> maxLevel = Vector256.Create(grid.MaxLevel);
        Vector256<float> min = x[0], max = x[0];
        Vector256<float> sumW = weights[0];
        Vector256<float> sumX = sumW * x[0];
        for (int i = 1; i < n; i++)
        {
            min = Vector256.ConditionalSelect(Vector256.LessThan(x[i], min), x[i], min);
            max = Vector256.ConditionalSelect(Vector256.GreaterThan(x[i], max), x[i], max);
            sumW += weights[i];
            sumX += weights[i] * x[i];
        }
        min = Vector256.ConditionalSelect(Vector256.GreaterThan(min, zero), zero, min);
        Vector256<float> flat = Vector256.Equals(max, min);
        Vector256<float> flatMin = min;
        Vector256<float> iscale = Vector256.Create((float)grid.MaxLevel) / (max - min);
        Vector256<float> scale = Vector256<float>.One / iscale;
        Vector256<float> bestError = zero;
        for (int i = 0; i < n; i++)
        {
            Vector256<float> l = Level(iscale * (x[i] - min), maxLevel);
            levels[i] = l;
            Vector256<float> diff = scale * l + min - x[i];
            bestError += weights[i] * (diff * diff);
        }
        for (int step = 0; step <= grid.Steps; step++)
        {
            iscale = Vector256.Create(grid.RMin + grid.RDelta * step + grid.MaxLevel) / (max - min);
            Vector256<float> sumL = zero, sumL2 = zero, sumXL = zero;
            for (int i = 0; i < n; i++)
            {
                Vector256<float> l = Level(iscale * (x[i] - min), maxLevel);
                candidate[i] = l;
                Vector256<float> wl = weights[i] * l;
                sumL += wl;
                sumL2 += wl * l;
                sumXL += wl * x[i];
            }
            Vector256<float> det = sumW * sumL2 - sumL * sumL;
            Vector256<float> solvable = Vector256.GreaterThan(det, zero);
            if (solvable.ExtractMostSignificantBits() == 0) continue;
            Vector256<float> thisScale = (sumW * sumXL - sumX * sumL) / det;
            Vector256<float> thisMin = (sumL2 * sumX - sumL * sumXL) / det;
            Vector256<float> minAboveZero = Vector256.GreaterThan(thisMin, zero);
            thisMin = Vector256.ConditionalSelect(minAboveZero, zero, thisMin);
            thisScale = Vector256.ConditionalSelect(minAboveZero, sumXL / sumL2, thisScale);
            Vector256<float> error = zero;
            for (int i = 0; i < n; i++)
            {
                Vector256<float> diff = thisScale * candidate[i] + thisMin - x[i];
                error += weights[i] * (diff * diff);
            }
            Vector256<float> better = solvable & Vector256.LessThan(error, bestError);
            if (better.ExtractMostSignificantBits() == 0) continue;
            for (int i = 0; i < n; i++) levels[i] = Vector256.ConditionalSelect(better, candidate[i], levels[i]);
            bestError = Vector256.ConditionalSelect(better, error, bestError);
            scale = Vector256.ConditionalSelect(better, thisScale, scale);
            min = Vector256.ConditionalSelect(better, thisMin, min);
        }
        for (int i = 0; i < n; i++) levels[i] = Vector256.ConditionalSelect(flat, zero, levels[i]);
        negatedMin = -Vector256.ConditionalSelect(flat, flatMin, min);
        return Vector256.ConditionalSelect(flat, zero, scale);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Level(Vector256<float> scaled, Vector256<int> maxLevel) =>
        Vector256.ConvertToSingle(Vector256.Max(Vector256<int>.Zero, Vector256.Min(maxLevel, GgmlRounding.NearestInt(scaled))));
}
