using System.Buffers.Binary;
using System.Runtime.Intrinsics;
using Tune.Formats;

namespace Tune.Quantize;

/// <summary>
/// Q5_1 (<c>block_q5_1</c>): 32 weights as fp16 <c>d</c>, fp16 <c>m</c>, u32 <c>qh</c> and 16 bytes of low nibbles
/// (bit planes as in Q5_0); w = q·d + m.
/// </summary>
public sealed class Q5_1Codec : IBlockCodec
{
    public const int BlockSize = 32;
    public const int BytesPerBlock = 24;

    private Q5_1Codec() { }

    public static Q5_1Codec Instance { get; } = new();

    public GgmlType Type => GgmlType.Q5_1;

    int IBlockCodec.BlockSize => BlockSize;

    int IBlockCodec.BytesPerBlock => BytesPerBlock;

    // quantize_row_q5_1_ref.
    public void Quantize(ReadOnlySpan<float> row, Span<byte> blocks)
    {
        int count = RowChecks.RequireBlocks(row.Length, blocks.Length, BlockSize, BytesPerBlock, GgmlType.Q5_1);
        RowChecks.RequireFinite(row, KernelPaths.Best);
        for (int b = 0; b < count; b++)
        {
            ReadOnlySpan<float> x = row.Slice(b * BlockSize, BlockSize);
            Span<byte> block = blocks.Slice(b * BytesPerBlock, BytesPerBlock);
            float min = float.MaxValue, max = -float.MaxValue;
            for (int j = 0; j < BlockSize; j++)
            {
                if (x[j] < min) min = x[j];
                if (x[j] > max) max = x[j];
            }
            float d = (max - min) / 31;
            float id = d != 0 ? 1 / d : 0;
            BinaryPrimitives.WriteUInt16LittleEndian(block, Fp16.FromFloat(d));
            BinaryPrimitives.WriteUInt16LittleEndian(block.Slice(2), Fp16.FromFloat(min));
            uint qh = 0;
            for (int j = 0; j < BlockSize / 2; j++)
            {
                // (uint8_t)(v + 0.5f): no clamp in ggml.
                int low = (byte)GgmlRounding.TruncateToInt32((x[j] - min) * id + 0.5f);
                int high = (byte)GgmlRounding.TruncateToInt32((x[j + BlockSize / 2] - min) * id + 0.5f);
                block[8 + j] = (byte)((low & 0x0F) | (high & 0x0F) << 4);
                qh |= (uint)(low & 0x10) >> 4 << j;
                qh |= (uint)(high & 0x10) >> 4 << (j + BlockSize / 2);
            }
            BinaryPrimitives.WriteUInt32LittleEndian(block.Slice(4), qh);
        }
    }

    // dequantize_row_q5_1.
    public void Dequantize(ReadOnlySpan<byte> blocks, Span<float> row)
    {
        int count = RowChecks.RequireBlocks(row.Length, blocks.Length, BlockSize, BytesPerBlock, GgmlType.Q5_1);
        for (int b = 0; b < count; b++)
        {
            ReadOnlySpan<byte> block = blocks.Slice(b * BytesPerBlock, BytesPerBlock);
            Span<float> y = row.Slice(b * BlockSize, BlockSize);
            float d = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(block));
            float m = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(block.Slice(2)));
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(block.Slice(4));
            for (int j = 0; j < BlockSize / 2; j++)
            {
                y[j] = ((block[8 + j] & 0x0F) | (int)(qh >> j << 4 & 0x10)) * d + m;
                y[j + BlockSize / 2] = ((block[8 + j] >> 4) | (int)(qh >> (j + 12) & 0x10)) * d + m;
            }
        }
    }

    public float Dot(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x) => Dot(blocks, x, KernelPaths.Best);

    internal static float Dot(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x, KernelPath path)
    {
        int count = RowChecks.RequireBlocks(x.Length, blocks.Length, BlockSize, BytesPerBlock, GgmlType.Q5_1);
        return path == KernelPath.Vector256 ? DotAvx2(blocks, x, count) : DotScalar(blocks, x, count);
    }

    private static float DotScalar(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x, int count)
    {
        float sum = 0;
        for (int b = 0; b < count; b++)
        {
            ReadOnlySpan<byte> block = blocks.Slice(b * BytesPerBlock, BytesPerBlock);
            ReadOnlySpan<float> xb = x.Slice(b * BlockSize, BlockSize);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(block.Slice(4));
            float levelSum = 0, xSum = 0;
            for (int j = 0; j < BlockSize / 2; j++)
            {
                int low = (block[8 + j] & 0x0F) | (int)(qh >> j << 4 & 0x10);
                int high = (block[8 + j] >> 4) | (int)(qh >> (j + 12) & 0x10);
                levelSum += low * xb[j] + high * xb[j + BlockSize / 2];
                xSum += xb[j] + xb[j + BlockSize / 2];
            }
            float d = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(block));
            float m = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(block.Slice(2)));
            sum += levelSum * d + xSum * m;
        }
        return sum;
    }

    private static unsafe float DotAvx2(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x, int count)
    {
        Vector256<float> sum = Vector256<float>.Zero;
        Vector256<int> nibble = Vector256.Create(0x0F);
        Vector256<uint> bits0 = Vector256.Create(0u, 1, 2, 3, 4, 5, 6, 7), bits8 = bits0 + Vector256.Create(8u);
        Vector256<uint> bits16 = bits0 + Vector256.Create(16u), bits24 = bits0 + Vector256.Create(24u);
        fixed (byte* firstBlock = blocks)
        fixed (float* firstX = x)
        {
            byte* block = firstBlock;
            float* xb = firstX;
            for (int b = 0; b < count; b++, block += BytesPerBlock, xb += BlockSize)
            {
                Vector256<uint> qh = Vector256.Create(Avx2Unpack.ReadUInt32(block + 4));
                Vector256<int> q0 = Avx2Unpack.Unsigned(block + 8), q1 = Avx2Unpack.Unsigned(block + 16);
                Vector256<float> x0 = Vector256.Load(xb), x1 = Vector256.Load(xb + 8);
                Vector256<float> x2 = Vector256.Load(xb + 16), x3 = Vector256.Load(xb + 24);
                Vector256<float> levelSum = Avx2Unpack.ToFloat((q0 & nibble) | Avx2Unpack.BitAsSixteen(qh, bits0)) * x0;
                levelSum = Vector256.MultiplyAddEstimate(
                    Avx2Unpack.ToFloat((q1 & nibble) | Avx2Unpack.BitAsSixteen(qh, bits8)), x1, levelSum);
                levelSum = Vector256.MultiplyAddEstimate(
                    Avx2Unpack.ToFloat(Vector256.ShiftRightLogical(q0, 4) | Avx2Unpack.BitAsSixteen(qh, bits16)), x2, levelSum);
                levelSum = Vector256.MultiplyAddEstimate(
                    Avx2Unpack.ToFloat(Vector256.ShiftRightLogical(q1, 4) | Avx2Unpack.BitAsSixteen(qh, bits24)), x3, levelSum);
                float d = Fp16.ToFloat(Avx2Unpack.ReadUInt16(block));
                float m = Fp16.ToFloat(Avx2Unpack.ReadUInt16(block + 2));
                sum = Vector256.MultiplyAddEstimate(levelSum, Vector256.Create(d), sum);
                sum = Vector256.MultiplyAddEstimate((x0 + x1) + (x2 + x3), Vector256.Create(m), sum);
            }
        }
        return Vector256.Sum(sum);
    }
}
