using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Tune.Formats;

namespace Tune.Quantize;

/// <summary>
/// Q4_K (<c>block_q4_K</c>): 256 weights as fp16 d, fp16 dmin, 12 bytes of 6-bit sub-block scales and mins, then
/// 128 bytes of 4-bit levels: for each 64 weights, byte l holds weight l (low nibble) and weight 32 + l (high nibble).
/// </summary>
public sealed class Q4KCodec : IBlockCodec
{
    public const int BlockSize = ScaleMinSuperBlock.Size;
    public const int BytesPerBlock = 144;
    private const int LevelsOffset = ScaleMinSuperBlock.HeaderBytes;

    // quantize_row_q4_K_ref: make_qkx2_quants(32, 15, …, rmin = −1, rdelta = 0.1, nstep = 20).
    private static readonly ScaleMinSearch.Grid Grid = new(MaxLevel: 15, RMin: -1f, RDelta: 0.1f, Steps: 20);

    private Q4KCodec() { }

    public static Q4KCodec Instance { get; } = new();

    public GgmlType Type => GgmlType.Q4_K;

    int IBlockCodec.BlockSize => BlockSize;

    int IBlockCodec.BytesPerBlock => BytesPerBlock;

    public void Quantize(ReadOnlySpan<float> row, Span<byte> blocks) => Quantize(row, blocks, KernelPaths.Best);

    [SkipLocalsInit]
    internal static void Quantize(ReadOnlySpan<float> row, Span<byte> blocks, KernelPath path)
    {
        int count = RowChecks.RequireBlocks(row.Length, blocks.Length, BlockSize, BytesPerBlock, GgmlType.Q4_K);
        RowChecks.RequireFinite(row, path);
        Span<byte> levels = stackalloc byte[BlockSize];
        for (int b = 0; b < count; b++)
        {
            Span<byte> block = blocks.Slice(b * BytesPerBlock, BytesPerBlock);
            ScaleMinSuperBlock.Quantize(row.Slice(b * BlockSize, BlockSize), Grid, block, levels, path);
            Span<byte> qs = block.Slice(LevelsOffset);
            for (int chunk = 0; chunk < 4; chunk++)
                for (int l = 0; l < 32; l++)
                    qs[32 * chunk + l] = (byte)(levels[64 * chunk + l] | levels[64 * chunk + 32 + l] << 4);
        }
    }

    // dequantize_row_q4_K.
    public void Dequantize(ReadOnlySpan<byte> blocks, Span<float> row)
    {
        int count = RowChecks.RequireBlocks(row.Length, blocks.Length, BlockSize, BytesPerBlock, GgmlType.Q4_K);
        for (int b = 0; b < count; b++)
        {
            ReadOnlySpan<byte> block = blocks.Slice(b * BytesPerBlock, BytesPerBlock);
            Span<float> y = row.Slice(b * BlockSize, BlockSize);
            float d = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(block));
            float dmin = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(block.Slice(2)));
            for (int chunk = 0; chunk < 4; chunk++)
            {
                (int sc1, int m1) = ScaleMinSuperBlock.Unpack(block, 2 * chunk);
                (int sc2, int m2) = ScaleMinSuperBlock.Unpack(block, 2 * chunk + 1);
                float d1 = d * sc1, min1 = dmin * m1, d2 = d * sc2, min2 = dmin * m2;
                ReadOnlySpan<byte> q = block.Slice(LevelsOffset + 32 * chunk, 32);
                for (int l = 0; l < 32; l++)
                {
                    y[64 * chunk + l] = d1 * (q[l] & 0x0F) - min1;
                    y[64 * chunk + 32 + l] = d2 * (q[l] >> 4) - min2;
                }
            }
        }
    }

    public float Dot(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x) => Dot(blocks, x, KernelPaths.Best);

    internal static float Dot(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x, KernelPath path)
    {
        int count = RowChecks.RequireBlocks(x.Length, blocks.Length, BlockSize, BytesPerBlock, GgmlType.Q4_K);
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
            for (int chunk = 0; chunk < 4; chunk++)
            {
                (int sc1, int m1) = ScaleMinSuperBlock.Unpack(block, 2 * chunk);
                (int sc2, int m2) = ScaleMinSuperBlock.Unpack(block, 2 * chunk + 1);
                float d1 = d * sc1, min1 = dmin * m1, d2 = d * sc2, min2 = dmin * m2;
                ReadOnlySpan<byte> q = block.Slice(LevelsOffset + 32 * chunk, 32);
                for (int l = 0; l < 32; l++)
                    sum += (d1 * (q[l] & 0x0F) - min1) * xb[64 * chunk + l] + (d2 * (q[l] >> 4) - min2) * xb[64 * chunk + 32 + l];
            }
        }
        return sum;
    }

    private static unsafe float DotAvx2(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x, int count)
    {
        Vector256<float> sum = Vector256<float>.Zero;
        Vector256<int> nibble = Vector256.Create(0x0F);
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
                for (int chunk = 0; chunk < 4; chunk++)
                {
                    byte* q = block + LevelsOffset + 32 * chunk;
                    float* x1 = xb + 64 * chunk, x2 = x1 + 32;
                    Vector256<float> levelSum1 = Vector256<float>.Zero, levelSum2 = Vector256<float>.Zero;
                    Vector256<float> xSum1 = Vector256<float>.Zero, xSum2 = Vector256<float>.Zero;
                    for (int g = 0; g < 32; g += 8)
                    {
                        Vector256<int> packed = Avx2Unpack.Unsigned(q + g);
                        Vector256<float> a = Vector256.Load(x1 + g), c = Vector256.Load(x2 + g);
                        levelSum1 = Vector256.MultiplyAddEstimate(Avx2Unpack.ToFloat(packed & nibble), a, levelSum1);
                        levelSum2 = Vector256.MultiplyAddEstimate(Avx2Unpack.ToFloat(Vector256.ShiftRightLogical(packed, 4)), c, levelSum2);
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
