using System.Buffers.Binary;
using Tune.Formats;

namespace Tune.Quantize;

/// <summary>
/// An activation row as ggml's <c>block_q8_0</c>, the vec_dot type of q4_0, q5_0 and q8_0: per 32 values an fp16
/// <c>d</c> and int8 <c>qs[32]</c>, with the levels of the AVX2 <c>quantize_row_q8_0</c> that llama.cpp's x86 builds
/// run (the multiplier 127/amax rather than the reference's 1/d, rounded half to even).
/// </summary>
internal static class Q8_0Activations
{
    public const int BlockSize = 32;
    public const int BlockBytes = 2 + BlockSize;
    public const int LevelsOffset = 2;

    public static int RowBytes(int values) => values / BlockSize * BlockBytes;

    public static void Quantize(ReadOnlySpan<float> x, Span<byte> blocks)
    {
        int count = RowChecks.RequireBlocks(x.Length, blocks.Length, BlockSize, BlockBytes, GgmlType.Q8_0);
        for (int b = 0; b < count; b++)
        {
            Span<byte> block = blocks.Slice(b * BlockBytes, BlockBytes);
            (float d, _) = RoundBlock(x.Slice(b * BlockSize, BlockSize), block.Slice(LevelsOffset, BlockSize));
            BinaryPrimitives.WriteUInt16LittleEndian(block, Fp16.FromFloat(d));
        }
    }

    /// <summary>
    /// Writes the 32 levels of <paramref name="x"/>; returns the unrounded scale and the sum of the levels. Rounded
    /// values go through <c>vcvtps2dq</c> and the saturating packs as in ggml, which only matters when 127/amax
    /// overflows (amax subnormal).
    /// </summary>
    public static (float Scale, int LevelSum) RoundBlock(ReadOnlySpan<float> x, Span<byte> levels)
    {
        float amax = 0;
        foreach (float v in x) amax = MathF.Max(amax, MathF.Abs(v));
        float id = amax != 0 ? 127f / amax : 0f;
        int sum = 0;
        for (int j = 0; j < BlockSize; j++)
        {
            int level = GgmlRounding.TruncateToInt32(MathF.Round(x[j] * id, MidpointRounding.ToEven));
            levels[j] = (byte)(sbyte)Math.Clamp(level, sbyte.MinValue, sbyte.MaxValue);
            sum = unchecked(sum + level);
        }
        return (amax / 127f, sum);
    }
}
