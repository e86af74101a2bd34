using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Tune.Formats;

namespace Tune.Quantize;

/// <summary>
/// Q8_0 (ggml-common.h <c>block_q8_0</c>): 32 weights as fp16 <c>d</c> then 32 int8 <c>qs</c>; w = qs·d.
/// </summary>
public sealed class Q8_0Codec : IBlockCodec
{
    public const int BlockSize = 32;
    public const int BytesPerBlock = 34;

    private Q8_0Codec() { }

    public static Q8_0Codec Instance { get; } = new();

    public GgmlType Type => GgmlType.Q8_0;

    int IBlockCodec.BlockSize => BlockSize;

    int IBlockCodec.BytesPerBlock => BytesPerBlock;

    public void Quantize(ReadOnlySpan<float> row, Span<byte> blocks) => Quantize(row, blocks, KernelPaths.Best);

    internal static void Quantize(ReadOnlySpan<float> row, Span<byte> blocks, KernelPath path)
    {
        int count = RowChecks.RequireBlocks(row.Length, blocks.Length, BlockSize, BytesPerBlock, GgmlType.Q8_0);
        RowChecks.RequireFinite(row, path);
        for (int b = 0; b < count; b++)
        {
            ReadOnlySpan<float> x = row.Slice(b * BlockSize, BlockSize);
            Span<byte> block = blocks.Slice(b * BytesPerBlock, BytesPerBlock);
            if (path == KernelPath.Vector256) QuantizeBlockVector256(x, block);
            else QuantizeBlockScalar(x, block);
        }
    }

    // quantize_row_q8_0_ref.
    private static void QuantizeBlockScalar(ReadOnlySpan<float> x, Span<byte> block)
    {
        float amax = 0;
        for (int j = 0; j < BlockSize; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
        float d = amax / 127;
        float id = d != 0 ? 1 / d : 0;
        BinaryPrimitives.WriteUInt16LittleEndian(block, Fp16.FromFloat(d));
        for (int j = 0; j < BlockSize; j++)
            block[2 + j] = (byte)GgmlRounding.TruncateToInt32(GgmlRounding.RoundHalfAwayFromZero(x[j] * id));
    }

    // The same per-weight arithmetic lane by lane; the block maximum does not depend on the order of comparisons.
    private static void QuantizeBlockVector256(ReadOnlySpan<float> x, Span<byte> block)
    {
        ref float source = ref MemoryMarshal.GetReference(x);
        Vector256<float> x0 = Vector256.LoadUnsafe(ref source), x1 = Vector256.LoadUnsafe(ref source, 8);
        Vector256<float> x2 = Vector256.LoadUnsafe(ref source, 16), x3 = Vector256.LoadUnsafe(ref source, 24);
        Vector256<float> magnitude = Vector256.MaxNative(
            Vector256.MaxNative(Vector256.Abs(x0), Vector256.Abs(x1)), Vector256.MaxNative(Vector256.Abs(x2), Vector256.Abs(x3)));
        float amax = MaxAcross(magnitude);
        float d = amax / 127;
        float id = d != 0 ? 1 / d : 0;
        BinaryPrimitives.WriteUInt16LittleEndian(block, Fp16.FromFloat(d));
        Vector256<float> scale = Vector256.Create(id);
        Vector256<short> low = Vector256.Narrow(Level(x0, scale), Level(x1, scale));
        Vector256<short> high = Vector256.Narrow(Level(x2, scale), Level(x3, scale));
        Vector256.Narrow(low, high).AsByte().StoreUnsafe(ref MemoryMarshal.GetReference(block.Slice(2)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Level(Vector256<float> x, Vector256<float> id) =>
        GgmlRounding.TruncateToInt32(GgmlRounding.RoundHalfAwayFromZero(x * id));

    private static float MaxAcross(Vector256<float> v)
    {
        Vector128<float> m = Vector128.MaxNative(v.GetLower(), v.GetUpper());
        m = Vector128.MaxNative(m, Vector128.Shuffle(m, Vector128.Create(2, 3, 0, 1)));
        m = Vector128.MaxNative(m, Vector128.Shuffle(m, Vector128.Create(1, 0, 3, 2)));
        return m.ToScalar();
    }

    // dequantize_row_q8_0.
    public void Dequantize(ReadOnlySpan<byte> blocks, Span<float> row)
    {
        int count = RowChecks.RequireBlocks(row.Length, blocks.Length, BlockSize, BytesPerBlock, GgmlType.Q8_0);
        for (int b = 0; b < count; b++)
        {
            ReadOnlySpan<byte> block = blocks.Slice(b * BytesPerBlock, BytesPerBlock);
            Span<float> y = row.Slice(b * BlockSize, BlockSize);
            float d = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(block));
            for (int j = 0; j < BlockSize; j++) y[j] = (sbyte)block[2 + j] * d;
        }
    }

    public float Dot(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x) => Dot(blocks, x, KernelPaths.Best);

    internal static float Dot(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x, KernelPath path)
    {
        int count = RowChecks.RequireBlocks(x.Length, blocks.Length, BlockSize, BytesPerBlock, GgmlType.Q8_0);
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
            for (int j = 0; j < BlockSize; j++) blockSum += (sbyte)block[2 + j] * xb[j];
            sum += blockSum * Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(block));
        }
        return sum;
    }

    private static unsafe float DotAvx2(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x, int count)
    {
        Vector256<float> sum = Vector256<float>.Zero;
        fixed (byte* firstBlock = blocks)
        fixed (float* firstX = x)
        {
            byte* block = firstBlock;
            float* xb = firstX;
            for (int b = 0; b < count; b++, block += BytesPerBlock, xb += BlockSize)
            {
                byte* qs = block + 2;
                Vector256<float> blockSum = Avx2Unpack.SignedToFloat(qs) * Vector256.Load(xb);
                blockSum = Vector256.MultiplyAddEstimate(Avx2Unpack.SignedToFloat(qs + 8), Vector256.Load(xb + 8), blockSum);
                blockSum = Vector256.MultiplyAddEstimate(Avx2Unpack.SignedToFloat(qs + 16), Vector256.Load(xb + 16), blockSum);
                blockSum = Vector256.MultiplyAddEstimate(Avx2Unpack.SignedToFloat(qs + 24), Vector256.Load(xb + 24), blockSum);
                float d = Fp16.ToFloat(Avx2Unpack.ReadUInt16(block));
                sum = Vector256.MultiplyAddEstimate(blockSum, Vector256.Create(d), sum);
            }
        }
        return Vector256.Sum(sum);
    }
}
