using System.Buffers.Binary;
using System.Runtime.Intrinsics;
using Tune.Formats;

namespace Tune.Quantize;

/// <summary>
/// Q5_0 (<c>block_q5_0</c>): 32 weights as fp16 <c>d</c>, a little-endian u32 <c>qh</c> (bit j = bit 4 of weight j)
/// and 16 bytes of low nibbles ordered as in Q4_0; w = (q − 16)·d.
/// </summary>
public sealed class Q5_0Codec : IBlockCodec
{
    public const int BlockSize = 32;
    public const int BytesPerBlock = 22;

    private Q5_0Codec() { }

    public static Q5_0Codec Instance { get; } = new();

    public GgmlType Type => GgmlType.Q5_0;

    int IBlockCodec.BlockSize => BlockSize;

    int IBlockCodec.BytesPerBlock => BytesPerBlock;

    // quantize_row_q5_0_ref.
    public void Quantize(ReadOnlySpan<float> row, Span<byte> blocks)
    {
        int count = RowChecks.RequireBlocks(row.Length, blocks.Length, BlockSize, BytesPerBlock, GgmlType.Q5_0);
        RowChecks.RequireFinite(row, KernelPaths.Best);
        for (int b = 0; b < count; b++)
        {
            ReadOnlySpan<float> x = row.Slice(b * BlockSize, BlockSize);
            Span<byte> block = blocks.Slice(b * BytesPerBlock, BytesPerBlock);
            float amax = 0, max = 0;
            for (int j = 0; j < BlockSize; j++)
            {
                if (amax < MathF.Abs(x[j]))
                {
                    amax = MathF.Abs(x[j]);
                    max = x[j];
                }
            }
            float d = max / -16;
            float id = d != 0 ? 1 / d : 0;
            BinaryPrimitives.WriteUInt16LittleEndian(block, Fp16.FromFloat(d));
            uint qh = 0;
            for (int j = 0; j < BlockSize / 2; j++)
            {
                int low = Level(x[j] * id), high = Level(x[j + BlockSize / 2] * id);
                block[6 + j] = (byte)((low & 0x0F) | (high & 0x0F) << 4);
                qh |= (uint)(low & 0x10) >> 4 << j;
                qh |= (uint)(high & 0x10) >> 4 << (j + BlockSize / 2);
            }
            BinaryPrimitives.WriteUInt32LittleEndian(block.Slice(2), qh);
        }
    }

    // MIN(31, (int8_t)(v + 16.5f)) stored as uint8_t.
    private static int Level(float scaled) => (byte)Math.Min(31, (int)(sbyte)GgmlRounding.TruncateToInt32(scaled + 16.5f));

    // dequantize_row_q5_0.
    public void Dequantize(ReadOnlySpan<byte> blocks, Span<float> row)
    {
        int count = RowChecks.RequireBlocks(row.Length, blocks.Length, BlockSize, BytesPerBlock, GgmlType.Q5_0);
        for (int b = 0; b < count; b++)
        {
            ReadOnlySpan<byte> block = blocks.Slice(b * BytesPerBlock, BytesPerBlock);
            Span<float> y = row.Slice(b * BlockSize, BlockSize);
            float d = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(block));
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(block.Slice(2));
            for (int j = 0; j < BlockSize / 2; j++)
            {
                y[j] = (((block[6 + j] & 0x0F) | (int)(qh >> j << 4 & 0x10)) - 16) * d;
                y[j + BlockSize / 2] = (((block[6 + j] >> 4) | (int)(qh >> (j + 12) & 0x10)) - 16) * d;
            }
        }
    }

    public float Dot(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x) => Dot(blocks, x, KernelPaths.Best);

    internal static float Dot(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x, KernelPath path)
    {
        int count = RowChecks.RequireBlocks(x.Length, blocks.Length, BlockSize, BytesPerBlock, GgmlType.Q5_0);
        return path == KernelPath.Vector256 ? DotAvx2(blocks, x, count) : DotScalar(blocks, x, count);
    }

    private static float DotScalar(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x, int count)
    {
        float sum = 0;
        for (int b = 0; b < count; b++)
        {
            ReadOnlySpan<byte> block = blocks.Slice(b * BytesPerBlock, BytesPerBlock);
            ReadOnlySpan<float> xb = x.Slice(b * BlockSize, BlockSize);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(block.Slice(2));
            float blockSum = 0;
            for (int j = 0; j < BlockSize / 2; j++)
            {
                int low = ((block[6 + j] & 0x0F) | (int)(qh >> j << 4 & 0x10)) - 16;
                int high = ((block[6 + j] >> 4) | (int)(qh >> (j + 12) & 0x10)) - 16;
                blockSum += low * xb[j] + high * xb[j + BlockSize / 2];
            }
            sum += blockSum * Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(block));
        }
        return sum;
    }

    private static unsafe float DotAvx2(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x, int count)
    {
        Vector256<float> sum = Vector256<float>.Zero;
        Vector256<int> nibble = Vector256.Create(0x0F), offset = Vector256.Create(16);
        Vector256<uint> bits0 = Vector256.Create(0u, 1, 2, 3, 4, 5, 6, 7), bits8 = bits0 + Vector256.Create(8u);
        Vector256<uint> bits16 = bits0 + Vector256.Create(16u), bits24 = bits0 + Vector256.Create(24u);
        fixed (byte* firstBlock = blocks)
        fixed (float* firstX = x)
        {
            byte* block = firstBlock;
            float* xb = firstX;
            for (int b = 0; b < count; b++, block += BytesPerBlock, xb += BlockSize)
            {
                Vector256<uint> qh = Vector256.Create(Avx2Unpack.ReadUInt32(block + 2));
                Vector256<int> q0 = Avx2Unpack.Unsigned(block + 6), q1 = Avx2Unpack.Unsigned(block + 14);
                Vector256<float> blockSum = Avx2Unpack.ToFloat(((q0 & nibble) | Avx2Unpack.BitAsSixteen(qh, bits0)) - offset) * Vector256.Load(xb);
                blockSum = Vector256.MultiplyAddEstimate(
                    Avx2Unpack.ToFloat(((q1 & nibble) | Avx2Unpack.BitAsSixteen(qh, bits8)) - offset), Vector256.Load(xb + 8), blockSum);
                blockSum = Vector256.MultiplyAddEstimate(
                    Avx2Unpack.ToFloat((Vector256.ShiftRightLogical(q0, 4) | Avx2Unpack.BitAsSixteen(qh, bits16)) - offset), Vector256.Load(xb + 16), blockSum);
                blockSum = Vector256.MultiplyAddEstimate(
                    Avx2Unpack.ToFloat((Vector256.ShiftRightLogical(q1, 4) | Avx2Unpack.BitAsSixteen(qh, bits24)) - offset), Vector256.Load(xb + 24), blockSum);
                float d = Fp16.ToFloat(Avx2Unpack.ReadUInt16(block));
                sum = Vector256.MultiplyAddEstimate(blockSum, Vector256.Create(d), sum);
            }
        }
        return Vector256.Sum(sum);
    }
}
