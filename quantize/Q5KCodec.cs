using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Tune.Formats;

namespace Tune.Quantize;

/// <summary>
/// Q5_K (<c>block_q5_K</c>): the Q4_K header (d, dmin, 6-bit scales and mins), then <c>qh[32]</c> and
/// <c>qs[128]</c>: the low 4 bits of each level in Q4_K's nibble order, and bit 4 of weight 64c + l (64c + 32 + l)
/// in bit 2c (2c + 1) of qh[l].
/// </summary>
public sealed class Q5KCodec : IBlockCodec
{
    public const int BlockSize = ScaleMinSuperBlock.Size;
    public const int BytesPerBlock = 176;
    private const int HighBitsOffset = ScaleMinSuperBlock.HeaderBytes;
    private const int LevelsOffset = HighBitsOffset + 32;

    // quantize_row_q5_K_ref: make_qkx2_quants(32, 31, …, rmin = −0.5, rdelta = 0.1, nstep = 15).
    private static readonly ScaleMinSearch.Grid Grid = new(MaxLevel: 31, RMin: -0.5f, RDelta: 0.1f, Steps: 15);

    private Q5KCodec() { }

    public static Q5KCodec Instance { get; } = new();

    public GgmlType Type => GgmlType.Q5_K;

    int IBlockCodec.BlockSize => BlockSize;

    int IBlockCodec.BytesPerBlock => BytesPerBlock;

    public void Quantize(ReadOnlySpan<float> row, Span<byte> blocks) => Quantize(row, blocks, KernelPaths.Best);

    [SkipLocalsInit]
    internal static void Quantize(ReadOnlySpan<float> row, Span<byte> blocks, KernelPath path)
    {
        int count = RowChecks.RequireBlocks(row.Length, blocks.Length, BlockSize, BytesPerBlock, GgmlType.Q5_K);
        RowChecks.RequireFinite(row, path);
        Span<byte> levels = stackalloc byte[BlockSize];
        for (int b = 0; b < count; b++)
        {
            Span<byte> block = blocks.Slice(b * BytesPerBlock, BytesPerBlock);
            ScaleMinSuperBlock.Quantize(row.Slice(b * BlockSize, BlockSize), Grid, block, levels, path);
            Span<byte> qh = block.Slice(HighBitsOffset, 32), qs = block.Slice(LevelsOffset);
            qh.Clear();
            for (int chunk = 0; chunk < 4; chunk++)
            {
                byte lowBit = (byte)(1 << 2 * chunk), highBit = (byte)(2 << 2 * chunk);
                for (int l = 0; l < 32; l++)
                {
                    int first = levels[64 * chunk + l], second = levels[64 * chunk + 32 + l];
                    if (first > 15)
                    {
                        first -= 16;
                        qh[l] |= lowBit;
                    }
                    if (second > 15)
                    {
                        second -= 16;
                        qh[l] |= highBit;
                    }
                    qs[32 * chunk + l] = (byte)(first | second << 4);
                }
            }
        }
    }

    // dequantize_row_q5_K.
    public void Dequantize(ReadOnlySpan<byte> blocks, Span<float> row)
    {
        int count = RowChecks.RequireBlocks(row.Length, blocks.Length, BlockSize, BytesPerBlock, GgmlType.Q5_K);
        for (int b = 0; b < count; b++)
        {
            ReadOnlySpan<byte> block = blocks.Slice(b * BytesPerBlock, BytesPerBlock);
            Span<float> y = row.Slice(b * BlockSize, BlockSize);
            float d = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(block));
            float dmin = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(block.Slice(2)));
            ReadOnlySpan<byte> qh = block.Slice(HighBitsOffset, 32);
            for (int chunk = 0; chunk < 4; chunk++)
            {
                (int sc1, int m1) = ScaleMinSuperBlock.Unpack(block, 2 * chunk);
                (int sc2, int m2) = ScaleMinSuperBlock.Unpack(block, 2 * chunk + 1);
                float d1 = d * sc1, min1 = dmin * m1, d2 = d * sc2, min2 = dmin * m2;
                int lowBit = 1 << 2 * chunk, highBit = 2 << 2 * chunk;
                ReadOnlySpan<byte> q = block.Slice(LevelsOffset + 32 * chunk, 32);
                for (int l = 0; l < 32; l++)
                {
                    y[64 * chunk + l] = d1 * ((q[l] & 0x0F) + ((qh[l] & lowBit) != 0 ? 16 : 0)) - min1;
                    y[64 * chunk + 32 + l] = d2 * ((q[l] >> 4) + ((qh[l] & highBit) != 0 ? 16 : 0)) - min2;
                }
            }
        }
    }

    public float Dot(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x) => Dot(blocks, x, KernelPaths.Best);

    internal static float Dot(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x, KernelPath path)
    {
        int count = RowChecks.RequireBlocks(x.Length, blocks.Length, BlockSize, BytesPerBlock, GgmlType.Q5_K);
        return path == KernelPath.Vector256 ? DotAvx2(blocks, x, count) : DotScalar(blocks, x, count);
    }

    private static float DotScalar(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x, int count)
    {
        float sum = 0;
        for (int b = 0; b < count; b++)
        {
            ReadOnlySpan<byte> block = blocks.Slice(b * BytesPerBlock, BytesPerBlock);
            ReadOnlySpan<float> xb = x.Slice(b * BlockSize, BlockSize);
            float d = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(block));
            float dmin = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(block.Slice(2)));
            ReadOnlySpan<byte> qh = block.Slice(HighBitsOffset, 32);
            for (int chunk = 0; chunk < 4; chunk++)
            {
                (int sc1, int m1) = ScaleMinSuperBlock.Unpack(block, 2 * chunk);
                (int sc2, int m2) = ScaleMinSuperBlock.Unpack(block, 2 * chunk + 1);
                float d1 = d * sc1, min1 = dmin * m1, d2 = d * sc2, min2 = dmin * m2;
                int lowBit = 1 << 2 * chunk, highBit = 2 << 2 * chunk;
                ReadOnlySpan<byte> q = block.Slice(LevelsOffset + 32 * chunk, 32);
                for (int l = 0; l < 32; l++)
                {
                    int first = (q[l] & 0x0F) + ((qh[l] & lowBit) != 0 ? 16 : 0);
                    int second = (q[l] >> 4) + ((qh[l] & highBit) != 0 ? 16 : 0);
                    sum += (d1 * first - min1) * xb[64 * chunk + l] + (d2 * second - min2) * xb[64 * chunk + 32 + l];
                }
            }
        }
        return sum;
    }

    private static unsafe float DotAvx2(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x, int count)
    {
        Vector256<float> sum = Vector256<float>.Zero;
        Vector256<int> nibble = Vector256.Create(0x0F), one = Vector256.Create(1);
        fixed (byte* firstBlock = blocks)
        fixed (float* firstX = x)
        {
            byte* block = firstBlock;
            float* xb = firstX;
            for (int b = 0; b < count; b++, block += BytesPerBlock, xb += BlockSize)
            {
                ReadOnlySpan<byte> header = new(block, ScaleMinSuperBlock.HeaderBytes);
                float d = Fp16.ToFloat(Avx2Unpack.ReadUInt16(block));
                float dmin = Fp16.ToFloat(Avx2Unpack.ReadUInt16(block + 2));
                byte* qh = block + HighBitsOffset;
                for (int chunk = 0; chunk < 4; chunk++)
                {
                    byte* q = block + LevelsOffset + 32 * chunk;
                    float* x1 = xb + 64 * chunk, x2 = x1 + 32;
                    int shift = 2 * chunk;
                    Vector256<float> levelSum1 = Vector256<float>.Zero, levelSum2 = Vector256<float>.Zero;
                    Vector256<float> xSum1 = Vector256<float>.Zero, xSum2 = Vector256<float>.Zero;
                    for (int g = 0; g < 32; g += 8)
                    {
                        Vector256<int> packed = Avx2Unpack.Unsigned(q + g), high = Avx2Unpack.Unsigned(qh + g);
                        Vector256<int> first = (packed & nibble) | Vector256.ShiftLeft(Vector256.ShiftRightLogical(high, shift) & one, 4);
                        Vector256<int> second = Vector256.ShiftRightLogical(packed, 4)
                            | Vector256.ShiftLeft(Vector256.ShiftRightLogical(high, shift + 1) & one, 4);
                        Vector256<float> a = Vector256.Load(x1 + g), c = Vector256.Load(x2 + g);
                        levelSum1 = Vector256.MultiplyAddEstimate(Avx2Unpack.ToFloat(first), a, levelSum1);
                        levelSum2 = Vector256.MultiplyAddEstimate(Avx2Unpack.ToFloat(second), c, levelSum2);
                        xSum1 += a;
                        xSum2 += c;
                    }
                    (int sc1, int m1) = ScaleMinSuperBlock.Unpack(header, 2 * chunk);
                    (int sc2, int m2) = ScaleMinSuperBlock.Unpack(header, 2 * chunk + 1);
                    sum = Vector256.MultiplyAddEstimate(levelSum1, Vector256.Create(d * sc1), sum);
                    sum = Vector256.MultiplyAddEstimate(levelSum2, Vector256.Create(d * sc2), sum);
                    sum = Vector256.MultiplyAddEstimate(xSum1, Vector256.Create(-(dmin * m1)), sum);
                    sum = Vector256.MultiplyAddEstimate(xSum2, Vector256.Create(-(dmin * m2)), sum);
                }
            }
        }
        return Vector256.Sum(sum);
    }
}
