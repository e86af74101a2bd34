using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Tune.Formats;

namespace Tune.Quantize;

/// <summary>
/// Q6_K (<c>block_q6_K</c>): 256 weights in 16 sub-blocks of 16; <c>ql[128]</c> low 4 bits, <c>qh[64]</c> high
/// 2 bits, <c>scales[16]</c> int8, fp16 <c>d</c> last; w = d·scale·(q − 32). In each half of 128 weights,
/// ql[l] holds weights l and 64 + l, ql[32 + l] weights 32 + l and 96 + l, and qh[l] the high bits of all four.
/// </summary>
public sealed class Q6KCodec : IBlockCodec
{
    public const int BlockSize = 256;
    public const int BytesPerBlock = 210;
    private const int SubBlockSize = 16;
    private const int SubBlocks = BlockSize / SubBlockSize;
    private const int HighBitsOffset = 128;
    private const int ScalesOffset = 192;
    private const int ScaleOffset = 208;
    private const int MaxLevel = 32;

    private Q6KCodec() { }

    public static Q6KCodec Instance { get; } = new();

    public GgmlType Type => GgmlType.Q6_K;

    int IBlockCodec.BlockSize => BlockSize;

    int IBlockCodec.BytesPerBlock => BytesPerBlock;

    public void Quantize(ReadOnlySpan<float> row, Span<byte> blocks) => Quantize(row, blocks, KernelPaths.Best);

    // quantize_row_q6_K_ref.
    [SkipLocalsInit]
    internal static void Quantize(ReadOnlySpan<float> row, Span<byte> blocks, KernelPath path)
    {
        int count = RowChecks.RequireBlocks(row.Length, blocks.Length, BlockSize, BytesPerBlock, GgmlType.Q6_K);
        RowChecks.RequireFinite(row, path);
        Span<byte> levels = stackalloc byte[BlockSize];
        Span<float> scales = stackalloc float[SubBlocks];
        for (int b = 0; b < count; b++)
        {
            ReadOnlySpan<float> x = row.Slice(b * BlockSize, BlockSize);
            Span<byte> block = blocks.Slice(b * BytesPerBlock, BytesPerBlock);
            if (path == KernelPath.Vector256) SearchVector256(x, scales, levels);
            else
                for (int j = 0; j < SubBlocks; j++)
                    scales[j] = ScaleSearch.Search(x.Slice(j * SubBlockSize, SubBlockSize), MaxLevel, levels.Slice(j * SubBlockSize, SubBlockSize));

            float maxScale = 0, maxAbsScale = 0;
            for (int j = 0; j < SubBlocks; j++)
            {
                float absScale = MathF.Abs(scales[j]);
                if (absScale > maxAbsScale)
                {
                    maxAbsScale = absScale;
                    maxScale = scales[j];
                }
            }
            if (maxAbsScale < 1e-15f)
            {
                block.Clear();
                continue;
            }
            float iscale = -128f / maxScale;
            ushort d = Fp16.FromFloat(1 / iscale);
            BinaryPrimitives.WriteUInt16LittleEndian(block.Slice(ScaleOffset), d);
            Span<sbyte> subScales = MemoryMarshal.Cast<byte, sbyte>(block.Slice(ScalesOffset, SubBlocks));
            for (int j = 0; j < SubBlocks; j++)
                subScales[j] = (sbyte)Math.Min(127, GgmlRounding.NearestInt(iscale * scales[j]));

            // Re-quantise against the stored scales; a sub-block whose stored scale is 0 keeps its search levels.
            float superScale = Fp16.ToFloat(d);
            for (int j = 0; j < SubBlocks; j++)
            {
                float scale = superScale * subScales[j];
                if (scale == 0) continue;
                for (int i = j * SubBlockSize; i < (j + 1) * SubBlockSize; i++)
                    levels[i] = (byte)(Math.Max(-32, Math.Min(31, GgmlRounding.NearestInt(x[i] / scale))) + 32);
            }

            for (int half = 0; half < 2; half++)
            {
                ReadOnlySpan<byte> l = levels.Slice(128 * half, 128);
                Span<byte> ql = block.Slice(64 * half, 64), qh = block.Slice(HighBitsOffset + 32 * half, 32);
                for (int i = 0; i < 32; i++)
                {
                    ql[i] = (byte)((l[i] & 0x0F) | (l[i + 64] & 0x0F) << 4);
                    ql[i + 32] = (byte)((l[i + 32] & 0x0F) | (l[i + 96] & 0x0F) << 4);
                    qh[i] = (byte)(l[i] >> 4 | l[i + 32] >> 4 << 2 | l[i + 64] >> 4 << 4 | l[i + 96] >> 4 << 6);
                }
            }
        }
    }

    // Sub-blocks 0–7 and 8–15 side by side, one per lane: element i of sub-block k goes to lane k % 8 of vector i.
    [SkipLocalsInit]
    private static void SearchVector256(ReadOnlySpan<float> x, Span<float> scales, Span<byte> levels)
    {
        Span<Vector256<float>> lanes = stackalloc Vector256<float>[SubBlockSize];
        Span<Vector256<float>> laneLevels = stackalloc Vector256<float>[SubBlockSize];
        Span<float> transposed = MemoryMarshal.Cast<Vector256<float>, float>(lanes);
        ReadOnlySpan<float> levelsByLane = MemoryMarshal.Cast<Vector256<float>, float>(laneLevels);
        for (int group = 0; group < 2; group++)
        {
            int first = 8 * group;
            for (int k = 0; k < 8; k++)
                for (int i = 0; i < SubBlockSize; i++)
                    transposed[i * 8 + k] = x[(first + k) * SubBlockSize + i];
            ScaleSearch.Search(lanes, MaxLevel, laneLevels).CopyTo(scales.Slice(first));
            for (int k = 0; k < 8; k++)
                for (int i = 0; i < SubBlockSize; i++)
                    levels[(first + k) * SubBlockSize + i] = (byte)levelsByLane[i * 8 + k];
        }
    }

    // dequantize_row_q6_K.
    public void Dequantize(ReadOnlySpan<byte> blocks, Span<float> row)
    {
        int count = RowChecks.RequireBlocks(row.Length, blocks.Length, BlockSize, BytesPerBlock, GgmlType.Q6_K);
        for (int b = 0; b < count; b++)
        {
            ReadOnlySpan<byte> block = blocks.Slice(b * BytesPerBlock, BytesPerBlock);
            float d = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(block.Slice(ScaleOffset)));
            ReadOnlySpan<sbyte> scales = MemoryMarshal.Cast<byte, sbyte>(block.Slice(ScalesOffset, SubBlocks));
            for (int half = 0; half < 2; half++)
            {
                ReadOnlySpan<byte> ql = block.Slice(64 * half, 64), qh = block.Slice(HighBitsOffset + 32 * half, 32);
                ReadOnlySpan<sbyte> sc = scales.Slice(8 * half, 8);
                Span<float> y = row.Slice(b * BlockSize + 128 * half, 128);
                for (int l = 0; l < 32; l++)
                {
                    int s = l / 16;
                    y[l] = d * sc[s] * (((ql[l] & 0x0F) | (qh[l] & 3) << 4) - 32);
                    y[l + 32] = d * sc[s + 2] * (((ql[l + 32] & 0x0F) | (qh[l] >> 2 & 3) << 4) - 32);
                    y[l + 64] = d * sc[s + 4] * (((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4) - 32);
                    y[l + 96] = d * sc[s + 6] * (((ql[l + 32] >> 4) | (qh[l] >> 6 & 3) << 4) - 32);
                }
            }
        }
    }

    public float Dot(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x) => Dot(blocks, x, KernelPaths.Best);

    internal static float Dot(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x, KernelPath path)
    {
        int count = RowChecks.RequireBlocks(x.Length, blocks.Length, BlockSize, BytesPerBlock, GgmlType.Q6_K);
        return path == KernelPath.Vector256 ? DotAvx2(blocks, x, count) : DotScalar(blocks, x, count);
    }

    private static float DotScalar(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x, int count)
    {
        float sum = 0;
        for (int b = 0; b < count; b++)
        {
            ReadOnlySpan<byte> block = blocks.Slice(b * BytesPerBlock, BytesPerBlock);
            float d = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(block.Slice(ScaleOffset)));
            ReadOnlySpan<sbyte> scales = MemoryMarshal.Cast<byte, sbyte>(block.Slice(ScalesOffset, SubBlocks));
            for (int half = 0; half < 2; half++)
            {
                ReadOnlySpan<byte> ql = block.Slice(64 * half, 64), qh = block.Slice(HighBitsOffset + 32 * half, 32);
                ReadOnlySpan<sbyte> sc = scales.Slice(8 * half, 8);
                ReadOnlySpan<float> xh = x.Slice(b * BlockSize + 128 * half, 128);
                for (int l = 0; l < 32; l++)
                {
                    int s = l / 16;
                    sum += d * sc[s] * (((ql[l] & 0x0F) | (qh[l] & 3) << 4) - 32) * xh[l]
                        + d * sc[s + 2] * (((ql[l + 32] & 0x0F) | (qh[l] >> 2 & 3) << 4) - 32) * xh[l + 32]
                        + d * sc[s + 4] * (((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4) - 32) * xh[l + 64]
                        + d * sc[s + 6] * (((ql[l + 32] >> 4) | (qh[l] >> 6 & 3) << 4) - 32) * xh[l + 96];
                }
            }
        }
        return sum;
    }

    private static unsafe float DotAvx2(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x, int count)
    {
        Vector256<float> sum = Vector256<float>.Zero;
        Vector256<int> nibble = Vector256.Create(0x0F), twoBits = Vector256.Create(3), offset = Vector256.Create(32);
        fixed (byte* firstBlock = blocks)
        fixed (float* firstX = x)
        {
            byte* block = firstBlock;
            float* xb = firstX;
            for (int b = 0; b < count; b++, block += BytesPerBlock, xb += BlockSize)
            {
                float d = Fp16.ToFloat(Avx2Unpack.ReadUInt16(block + ScaleOffset));
                sbyte* scales = (sbyte*)(block + ScalesOffset);
                for (int half = 0; half < 2; half++)
                {
                    byte* ql = block + 64 * half, qh = block + HighBitsOffset + 32 * half;
                    sbyte* sc = scales + 8 * half;
                    float* xh = xb + 128 * half;
                    // Weights l and l + 8 (l < 8) of each quarter share a sub-block scale: sum them first, scale once.
                    for (int g = 0; g < 32; g += 16)
                    {
                        Vector256<float> sum1 = Vector256<float>.Zero, sum2 = Vector256<float>.Zero;
                        Vector256<float> sum3 = Vector256<float>.Zero, sum4 = Vector256<float>.Zero;
                        for (int l = g; l < g + 16; l += 8)
                        {
                            Vector256<int> a = Avx2Unpack.Unsigned(ql + l), c = Avx2Unpack.Unsigned(ql + 32 + l);
                            Vector256<int> high = Avx2Unpack.Unsigned(qh + l);
                            Vector256<int> q1 = ((a & nibble) | Vector256.ShiftLeft(high & twoBits, 4)) - offset;
                            Vector256<int> q2 = ((c & nibble) | Vector256.ShiftLeft(Vector256.ShiftRightLogical(high, 2) & twoBits, 4)) - offset;
                            Vector256<int> q3 = (Vector256.ShiftRightLogical(a, 4) | Vector256.ShiftLeft(Vector256.ShiftRightLogical(high, 4) & twoBits, 4)) - offset;
                            Vector256<int> q4 = (Vector256.ShiftRightLogical(c, 4) | Vector256.ShiftLeft(Vector256.ShiftRightLogical(high, 6), 4)) - offset;
                            sum1 = Vector256.MultiplyAddEstimate(Avx2Unpack.ToFloat(q1), Vector256.Load(xh + l), sum1);
                            sum2 = Vector256.MultiplyAddEstimate(Avx2Unpack.ToFloat(q2), Vector256.Load(xh + 32 + l), sum2);
                            sum3 = Vector256.MultiplyAddEstimate(Avx2Unpack.ToFloat(q3), Vector256.Load(xh + 64 + l), sum3);
                            sum4 = Vector256.MultiplyAddEstimate(Avx2Unpack.ToFloat(q4), Vector256.Load(xh + 96 + l), sum4);
                        }
                        int s = g / 16;
                        sum = Vector256.MultiplyAddEstimate(sum1, Vector256.Create(d * sc[s]), sum);
                        sum = Vector256.MultiplyAddEstimate(sum2, Vector256.Create(d * sc[s + 2]), sum);
                        sum = Vector256.MultiplyAddEstimate(sum3, Vector256.Create(d * sc[s + 4]), sum);
                        sum = Vector256.MultiplyAddEstimate(sum4, Vector256.Create(d * sc[s + 6]), sum);
                    }
                }
            }
        }
        return Vector256.Sum(sum);
    }
}
