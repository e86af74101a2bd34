using System.Buffers.Binary;
using Tune.Formats;

namespace Tune.Quantize;

/// <summary>
/// An activation row as ggml's <c>block_q8_K</c>, the vec_dot type of the k-quants: per 256 values a float32
/// <c>d</c>, int8 <c>qs[256]</c> and int16 <c>bsums[16]</c> (sums of each 16 levels, which carry the weights' mins
/// and offsets). Levels are <c>quantize_row_q8_K_ref</c>'s (the x86 quantize_row_q8_K calls it).
/// </summary>
internal static class Q8KActivations
{
    public const int BlockSize = 256;
    public const int BlockBytes = 4 + BlockSize + 2 * BlockSize / 16;
    public const int LevelsOffset = 4;
    public const int SumsOffset = LevelsOffset + BlockSize;

    /// <summary>The bytes of the blocks of a row of <paramref name="values"/> values.</summary>
    public static int RowBytes(int values) => values / BlockSize * BlockBytes;

    public static void Quantize(ReadOnlySpan<float> x, Span<byte> blocks)
    {
        int count = RowChecks.RequireBlocks(x.Length, blocks.Length, BlockSize, BlockBytes, GgmlType.Q8_K);
        for (int b = 0; b < count; b++)
            QuantizeBlock(x.Slice(b * BlockSize, BlockSize), blocks.Slice(b * BlockBytes, BlockBytes));
    }

    // The scale comes from the signed value of largest magnitude, so that value lands exactly on −127 and the
    // opposite extreme may round to +128, which ggml caps at 127.
    private static void QuantizeBlock(ReadOnlySpan<float> x, Span<byte> block)
    {
        float amax = 0, max = 0;
        foreach (float v in x)
        {
            float a = MathF.Abs(v);
            if (a > amax) { amax = a; max = v; }
        }
        if (amax == 0)
        {
            block.Clear();
            return;
        }
        float iscale = -127f / max;
        BinaryPrimitives.WriteSingleLittleEndian(block, 1 / iscale);
        Span<byte> levels = block.Slice(LevelsOffset, BlockSize);
        for (int j = 0; j < BlockSize; j++) levels[j] = (byte)(sbyte)Math.Min(127, GgmlRounding.NearestInt(iscale * x[j]));
        for (int g = 0; g < BlockSize / 16; g++)
        {
            int sum = 0;
            for (int i = 16 * g; i < 16 * g + 16; i++) sum += (sbyte)levels[i];
            BinaryPrimitives.WriteInt16LittleEndian(block.Slice(SumsOffset + 2 * g), (short)sum);
        }
    }
}
