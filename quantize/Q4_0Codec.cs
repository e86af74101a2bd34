using System.Buffers.Binary;
using System.Runtime.Intrinsics;
using Tune.Formats;

namespace Tune.Quantize;

/// <summary>
/// Q4_0 (<c>block_q4_0</c>): 32 weights as fp16 <c>d</c> then 16 bytes; byte j holds weight j in its low nibble and
/// weight j+16 in its high nibble; w = (q − 8)·d.
/// </summary>
public sealed class Q4_0Codec : IBlockCodec
{
    public const int BlockSize = 32;
    public const int BytesPerBlock = 18;

    private Q4_0Codec() { }

    public static Q4_0Codec Instance { get; } = new();

    public GgmlType Type => GgmlType.Q4_0;

    int IBlockCodec.BlockSize => BlockSize;

    int IBlockCodec.BytesPerBlock => BytesPerBlock;

    // quantize_row_q4_0_ref.
    public void Quantize(ReadOnlySpan<float> row, Span<byte> blocks)
    {
        int count = RowChecks.RequireBlocks(row.Length, blocks.Length, BlockSize, BytesPerBlock, GgmlType.Q4_0);
        RowChecks.RequireFinite(row, KernelPaths.Best);
        for (int b = 0; b < count; b++)
        {
            ReadOnlySpan<float> x = row.Slice(b * BlockSize, BlockSize);
            Span<byte> block = blocks.Slice(b * BytesPerBlock, BytesPerBlock);
            // The signed weight of largest magnitude, the first one on ties.
            float amax = 0, max = 0;
            for (int j = 0; j < BlockSize; j++)
            {
                if (amax < MathF.Abs(x[j]))
                {
                    amax = MathF.Abs(x[j]);
                    max = x[j];
                }
            }
            float d = max / -8;
            float id = d != 0 ? 1 / d : 0;
            BinaryPrimitives.WriteUInt16LittleEndian(block, Fp16.FromFloat(d));
            for (int j = 0; j < BlockSize / 2; j++)
                block[2 + j] = (byte)(Level(x[j] * id) | Level(x[j + BlockSize / 2] * id) << 4);
        }
    }

    // MIN(15, (int8_t)(v + 8.5f)) stored as uint8_t.
    private static int Level(float scaled) => (byte)Math.Min(15, (int)(sbyte)GgmlRounding.TruncateToInt32(scaled + 8.5f));

    // dequantize_row_q4_0.
    public void Dequantize(ReadOnlySpan<byte> blocks, Span<float> row)
    {
        int count = RowChecks.RequireBlocks(row.Length, blocks.Length, BlockSize, BytesPerBlock, GgmlType.Q4_0);
        for (int b = 0; b < count; b++)
        {
            ReadOnlySpan<byte> block = blocks.Slice(b * BytesPerBlock, BytesPerBlock);
            Span<float> y = row.Slice(b * BlockSize, BlockSize);
            float d = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(block));
            for (int j = 0; j < BlockSize / 2; j++)
            {
                y[j] = ((block[2 + j] & 0x0F) - 8) * d;
                y[j + BlockSize / 2] = ((block[2 + j] >> 4) - 8) * d;
            }
        }
    }

    public float Dot(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x) => Dot(blocks, x, KernelPaths.Best);

    internal static float Dot(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x, KernelPath path)
    {
        int count = RowChecks.RequireBlocks(x.Length, blocks.Length, BlockSize, BytesPerBlock, GgmlType.Q4_0);
        return path == KernelPath.Vector256 ? DotAvx2(blocks, x, count) : DotScalar(blocks, x, count);
    }

    private static float DotScalar(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x, int count)
    {
        float sum = 0;
        for (int b = 0; b < count; b++)
        {
            ReadOnlySpan<byte> block = blocks.Slice(b * BytesPerBlock, BytesPerBlock);
            ReadOnlySpan<float> xb = x.Slice(b * BlockSize, BlockSize);
            float blockSum = 0;
            for (int j = 0; j < BlockSize / 2; j++)
                blockSum += ((block[2 + j] & 0x0F) - 8) * xb[j] + ((block[2 + j] >> 4) - 8) * xb[j + BlockSize / 2];
            sum += blockSum * Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(block));
        }
        return sum;
    }

    private static unsafe float DotAvx2(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x, int count)
    {
        Vector256<float> sum = Vector256<float>.Zero;
        Vector256<int> nibble = Vector256.Create(0x0F), offset = Vector256.Create(8);
        fixed (byte* firstBlock = blocks)
        fixed (float* firstX = x)
        {
            byte* block = firstBlock;
            float* xb = firstX;
            for (int b = 0; b < count; b++, block += BytesPerBlock, xb += BlockSize)
            {
                Vector256<int> q0 = Avx2Unpack.Unsigned(block + 2), q1 = Avx2Unpack.Unsigned(block + 10);
                Vector256<float> blockSum = Avx2Unpack.ToFloat((q0 & nibble) - offset) * Vector256.Load(xb);
                blockSum = Vector256.MultiplyAddEstimate(Avx2Unpack.ToFloat((q1 & nibble) - offset), Vector256.Load(xb + 8), blockSum);
                blockSum = Vector256.MultiplyAddEstimate(Avx2Unpack.ToFloat(Vector256.ShiftRightLogical(q0, 4) - offset), Vector256.Load(xb + 16), blockSum);
                blockSum = Vector256.MultiplyAddEstimate(Avx2Unpack.ToFloat(Vector256.ShiftRightLogical(q1, 4) - offset), Vector256.Load(xb + 24), blockSum);
                float d = Fp16.ToFloat(Avx2Unpack.ReadUInt16(block));
                sum = Vector256.MultiplyAddEstimate(blockSum, Vector256.Create(d), sum);
            }
        }
        return Vector256.Sum(sum);
    }
}
