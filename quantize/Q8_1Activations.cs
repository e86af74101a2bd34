using System.Buffers.Binary;
using Tune.Formats;

namespace Tune.Quantize;

/// <summary>
/// An activation row as ggml's <c>block_q8_1</c>, the vec_dot type of q5_1: <see cref="Q8_0Activations"/>' levels and
/// fp16 <c>d</c>, plus fp16 <c>s</c> = d·Σqs (d before its fp16 rounding, as the AVX2 quantize_row_q8_1 has it),
/// which carries the weights' offset m.
/// </summary>
internal static class Q8_1Activations
{
    public const int BlockSize = 32;
    public const int BlockBytes = 4 + BlockSize;
    public const int SumOffset = 2;
    public const int LevelsOffset = 4;

    public static int RowBytes(int values) => values / BlockSize * BlockBytes;

    public static void Quantize(ReadOnlySpan<float> x, Span<byte> blocks)
    {
        int count = RowChecks.RequireBlocks(x.Length, blocks.Length, BlockSize, BlockBytes, GgmlType.Q8_1);
        for (int b = 0; b < count; b++)
        {
            Span<byte> block = blocks.Slice(b * BlockBytes, BlockBytes);
            (float d, int sum) = Q8_0Activations.RoundBlock(x.Slice(b * BlockSize, BlockSize), block.Slice(LevelsOffset, BlockSize));
            BinaryPrimitives.WriteUInt16LittleEndian(block, Fp16.FromFloat(d));
            BinaryPrimitives.WriteUInt16LittleEndian(block.Slice(SumOffset), Fp16.FromFloat(d * sum));
        }
    }
}
