using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Tune.Quantize;

/// <summary>
/// The part Q4_K and Q5_K share (<c>quantize_row_q4_K_ref</c> / <c>quantize_row_q5_K_ref</c>): a 256-weight
/// super-block of eight 32-weight sub-blocks, each with a 6-bit scale and a 6-bit min under the fp16 super-scales
/// <c>d</c> and <c>dmin</c>; w ≈ d·sc·L − dmin·m. Header layout: d (bytes 0–1), dmin (2–3), packed scales (4–15).
/// </summary>
internal static class ScaleMinSuperBlock
{
    public const int Size = 256;
    public const int SubBlockSize = 32;
    public const int SubBlocks = Size / SubBlockSize;
    public const int HeaderBytes = 16;
    private const int PackedScalesOffset = 4;

    /// <summary>Writes the header and the levels (0..grid.MaxLevel) of the 256 weights of <paramref name="x"/>.</summary>
    [SkipLocalsInit]
    public static void Quantize(ReadOnlySpan<float> x, ScaleMinSearch.Grid grid, Span<byte> header, Span<byte> levels,
        KernelPath path)
    {
        Span<float> scales = stackalloc float[SubBlocks];
        Span<float> mins = stackalloc float[SubBlocks];
        if (path == KernelPath.Vector256) SearchVector256(x, grid, scales, mins, levels);
        else SearchScalar(x, grid, scales, mins, levels);

        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < SubBlocks; j++)
        {
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }
        float inverseScale = maxScale > 0 ? 63f / maxScale : 0f;
        float inverseMin = maxMin > 0 ? 63f / maxMin : 0f;
        Span<byte> packed = header.Slice(PackedScalesOffset, 12);
        Span<byte> scaleLevels = stackalloc byte[SubBlocks];
        Span<byte> minLevels = stackalloc byte[SubBlocks];
        for (int j = 0; j < SubBlocks; j++)
        {
            // uint8_t ls = nearest_int(...): the int is cut to a byte before the clamp.
            scaleLevels[j] = Math.Min((byte)63, (byte)GgmlRounding.NearestInt(inverseScale * scales[j]));
            minLevels[j] = Math.Min((byte)63, (byte)GgmlRounding.NearestInt(inverseMin * mins[j]));
            Pack(packed, j, scaleLevels[j], minLevels[j]);
        }
        ushort d = Fp16.FromFloat(maxScale / 63f), dmin = Fp16.FromFloat(maxMin / 63f);
        BinaryPrimitives.WriteUInt16LittleEndian(header, d);
        BinaryPrimitives.WriteUInt16LittleEndian(header.Slice(2), dmin);

        // Re-quantise against the stored (rounded) scales; a sub-block whose stored scale is 0 keeps its search levels.
        float superScale = Fp16.ToFloat(d), superMin = Fp16.ToFloat(dmin);
        for (int j = 0; j < SubBlocks; j++)
        {
            float scale = superScale * scaleLevels[j];
            if (scale == 0) continue;
            float min = superMin * minLevels[j];
            for (int i = j * SubBlockSize; i < (j + 1) * SubBlockSize; i++)
                levels[i] = (byte)Math.Max(0, Math.Min(grid.MaxLevel, GgmlRounding.NearestInt((x[i] + min) / scale)));
        }
    }

    /// <summary>get_scale_min_k4: the 6-bit scale and min of sub-block <paramref name="j"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (int Scale, int Min) Unpack(ReadOnlySpan<byte> header, int j)
    {
        ReadOnlySpan<byte> q = header.Slice(PackedScalesOffset, 12);
        return j < 4
            ? (q[j] & 63, q[j + 4] & 63)
            : ((q[j + 4] & 0x0F) | (q[j - 4] >> 6) << 4, (q[j + 4] >> 4) | (q[j] >> 6) << 4);
    }

    // The inverse of get_scale_min_k4, in ggml's order (j = 0..7) so the ORs of sub-blocks 4..7 land on bytes already set.
    private static void Pack(Span<byte> q, int j, byte scale, byte min)
    {
        if (j < 4)
        {
            q[j] = scale;
            q[j + 4] = min;
        }
        else
        {
            q[j + 4] = (byte)((scale & 0x0F) | (min & 0x0F) << 4);
            q[j - 4] |= (byte)(scale >> 4 << 6);
            q[j] |= (byte)(min >> 4 << 6);
        }
    }

    [SkipLocalsInit]
    private static void SearchScalar(ReadOnlySpan<float> x, ScaleMinSearch.Grid grid, Span<float> scales,
        Span<float> mins, Span<byte> levels)
    {
        Span<float> weights = stackalloc float[SubBlockSize];
        Span<byte> candidate = stackalloc byte[SubBlockSize];
        for (int j = 0; j < SubBlocks; j++)
        {
            ReadOnlySpan<float> sub = x.Slice(j * SubBlockSize, SubBlockSize);
            float sumX2 = 0;
            for (int i = 0; i < SubBlockSize; i++) sumX2 += sub[i] * sub[i];
            float averageMagnitude = MathF.Sqrt(sumX2 / SubBlockSize);
            for (int i = 0; i < SubBlockSize; i++) weights[i] = averageMagnitude + MathF.Abs(sub[i]);
            scales[j] = ScaleMinSearch.Search(sub, weights, grid, levels.Slice(j * SubBlockSize, SubBlockSize), candidate, out mins[j]);
        }
    }

    // The eight sub-blocks side by side, one per lane: element i of sub-block k goes to lane k of vector i.
    [SkipLocalsInit]
    private static void SearchVector256(ReadOnlySpan<float> x, ScaleMinSearch.Grid grid, Span<float> scales,
        Span<float> mins, Span<byte> levels)
    {
        Span<Vector256<float>> lanes = stackalloc Vector256<float>[SubBlockSize];
        Span<Vector256<float>> weights = stackalloc Vector256<float>[SubBlockSize];
        Span<Vector256<float>> laneLevels = stackalloc Vector256<float>[SubBlockSize];
        Span<float> transposed = MemoryMarshal.Cast<Vector256<float>, float>(lanes);
        for (int k = 0; k < SubBlocks; k++)
            for (int i = 0; i < SubBlockSize; i++)
                transposed[i * SubBlocks + k] = x[k * SubBlockSize + i];

        Vector256<float> sumX2 = Vector256<float>.Zero;
        for (int i = 0; i < SubBlockSize; i++) sumX2 += lanes[i] * lanes[i];
        Vector256<float> averageMagnitude = Vector256.Sqrt(sumX2 / Vector256.Create((float)SubBlockSize));
        for (int i = 0; i < SubBlockSize; i++) weights[i] = averageMagnitude + Vector256.Abs(lanes[i]);

        Vector256<float> scale = ScaleMinSearch.Search(lanes, weights, grid, laneLevels, out Vector256<float> negatedMin);
        scale.CopyTo(scales);
        negatedMin.CopyTo(mins);
        ReadOnlySpan<float> levelsByLane = MemoryMarshal.Cast<Vector256<float>, float>(laneLevels);
        for (int k = 0; k < SubBlocks; k++)
            for (int i = 0; i < SubBlockSize; i++)
                levels[k * SubBlockSize + i] = (byte)levelsByLane[i * SubBlocks + k];
    }
}
