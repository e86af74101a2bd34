using System.Buffers.Binary;
using Tune.Formats;
using Tune.Quantize;

namespace Tune.Tests.Quantize;

/// <summary>
/// The integer matrix-product kernels (<see cref="IntegerDot"/>): activation blocks byte for byte ggml's, products
/// equal to a double-precision sum over the dequantised weights and activations up to float rounding on both paths,
/// the vector path's equal to ggml's own AVX2 vec_dot to the bit (q4_0 and q4_K follow llama.cpp's repacked kernels
/// instead, so up to rounding there), and several tokens per call the same as one at a time.
/// </summary>
public sealed unsafe class IntegerDotTests
{
    public static TheoryData<GgmlType> Types => Codecs.Types;

    public static TheoryData<GgmlType> ActivationTypes => new([GgmlType.Q8_0, GgmlType.Q8_1, GgmlType.Q8_K]);

    [Theory]
    [MemberData(nameof(ActivationTypes))]
    public void ActivationBlocksAreGgmls(GgmlType type)
    {
        Assert.True(GgmlCpuOracle.Runs, "ggml's prebuilt AVX2 kernels (the oracle) need a CPU with AVX2 and FMA");
        foreach (TestRows.Case row in TestRows.ForBlockSize(type.BlockSize()))
        {
            float[] x = row.Values;
            byte[] ours = new byte[type.ByteCount([x.Length])];
            if (type == GgmlType.Q8_K) Q8KActivations.Quantize(x, ours);
            else if (type == GgmlType.Q8_1) Q8_1Activations.Quantize(x, ours);
            else Q8_0Activations.Quantize(x, ours);
            byte[] ggml = GgmlCpuOracle.QuantizeRow(type, x);
            if (type == GgmlType.Q8_K) ClearUnwrittenSums(x, ggml);
            int block = type.BlockBytes();
            for (int b = 0; b < ours.Length / block; b++)
                Assert.True(ours.AsSpan(b * block, block).SequenceEqual(ggml.AsSpan(b * block, block)),
                    $"{type} {row}: block {b} differs from ggml's quantize_row_{type.Name()}");
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void ProductsEqualTheDequantisedSumAndGgmls(GgmlType type)
    {
        IntegerDot dot = IntegerDot.For(type)!;
        foreach ((string name, byte[] weights, int width) in WeightRows(type))
        {
            float[] x = TestRows.Normal(width, 7 + width);
            byte[] activations = new byte[dot.ActivationRowBytes(width)];
            dot.QuantizeActivations(x, activations);
            (double expected, double magnitude) = DequantisedProduct(type, dot, weights, activations, width);
            double tolerance = 2e-6 * magnitude + 1e-30;
            var byPath = new Dictionary<KernelPath, float>();
            foreach (KernelPath path in Codecs.AvailablePaths)
            {
                float actual = Dot(dot, weights, activations, width, path);
                byPath[path] = actual;
                Assert.True(Math.Abs(actual - expected) <= tolerance,
                    $"{type} {name} {path}: integer dot {actual:R}, dequantised sum {expected:R} (tolerance {tolerance:G3})");
            }
            if (byPath.Count > 1)
                Assert.True(Math.Abs(byPath[KernelPath.Scalar] - byPath[KernelPath.Vector256]) <= tolerance,
                    $"{type} {name}: scalar {byPath[KernelPath.Scalar]:R}, Vector256 {byPath[KernelPath.Vector256]:R}");
            // The vector path adds in ggml's AVX2 vec_dot order, equal to the bit; q4_0's and q4_K's follow the
            // repacked q4_0_8x8 / q4_K_8x8 kernels llama.cpp runs instead (integers per block), equal up to rounding.
            if (GgmlCpuOracle.Runs)
            {
                float ggml = GgmlCpuOracle.VecDot(type, dot.Activations, weights, activations, width), ours = byPath[KernelPath.Vector256];
                if (type is GgmlType.Q4_0 or GgmlType.Q4_K)
                    Assert.True(Math.Abs(ours - ggml) <= tolerance, $"{type} {name}: ours {ours:R}, ggml's vec_dot {ggml:R} (tolerance {tolerance:G3})");
                else
                    Assert.True(BitConverter.SingleToInt32Bits(ggml) == BitConverter.SingleToInt32Bits(ours), $"{type} {name}: ours {ours:R}, ggml's vec_dot {ggml:R}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void SeveralTokensACallGiveEachTokensProduct(GgmlType type)
    {
        IntegerDot dot = IntegerDot.For(type)!;
        (_, byte[] weights, int width) = WeightRows(type).First();
        int rowBytes = dot.ActivationRowBytes(width);
        byte[] activations = new byte[IntegerDot.MaxTokens * rowBytes];
        for (int t = 0; t < IntegerDot.MaxTokens; t++)
            dot.QuantizeActivations(TestRows.Normal(width, 100 + t, sigma: t + 1), activations.AsSpan(t * rowBytes, rowBytes));
        foreach (KernelPath path in Codecs.AvailablePaths)
        {
            var together = new float[2 * IntegerDot.MaxTokens];
            fixed (byte* w = weights)
            fixed (byte* a = activations)
            fixed (float* y = together)
                dot.Dot(w, width / dot.BlockSize, a, rowBytes, IntegerDot.MaxTokens, y + 1, 2, path);
            for (int t = 0; t < IntegerDot.MaxTokens; t++)
            {
                float alone = Dot(dot, weights, activations.AsSpan(t * rowBytes, rowBytes).ToArray(), width, path);
                Assert.Equal(alone, together[2 * t + 1]);
                Assert.Equal(0f, together[2 * t]);
            }
        }
    }

    // Rows our codec quantised (the widths DeepSeek-V2-Lite's matrices take) and rows of random block bytes.
    private static IEnumerable<(string Name, byte[] Blocks, int Width)> WeightRows(GgmlType type)
    {
        IBlockCodec codec = BlockCodecs.For(type);
        foreach (int width in codec.BlockSize == 32 ? new[] { 1408, 2048, 10944 } : [256, 2048, 10752])
        {
            var blocks = new byte[type.ByteCount([width])];
            codec.Quantize(TestRows.Normal(width, width, 0.02f), blocks);
            yield return ($"normal {width}", blocks, width);
        }
        byte[] random = GgmlAgreementTests.RandomBlocks(type, codec, blocks: 64, seed: 17);
        yield return ("random block bytes", random, random.Length / codec.BytesPerBlock * codec.BlockSize);
    }

    private static float Dot(IntegerDot dot, byte[] weights, byte[] activations, int width, KernelPath path)
    {
        float result;
        fixed (byte* w = weights)
        fixed (byte* a = activations)
            dot.Dot(w, width / dot.BlockSize, a, activations.Length, 1, &result, 1, path);
        return result;
    }

    // Σ w·a in double over our codec's dequantised weights and the activation blocks' own values (d·q), with Σ|w·a|
    // for the tolerance. q5_1's w = d·L + m meets Q8_1 as ggml has it, d·L·a + m·s, s being the block's stored d·Σq.
    private static (double Sum, double Magnitude) DequantisedProduct(GgmlType type, IntegerDot dot, byte[] weights, byte[] activations, int width)
    {
        bool withSum = dot.Activations == GgmlType.Q8_1;
        byte[] scaled = (byte[])weights.Clone();
        if (withSum)
            for (int b = 0; b < width / dot.BlockSize; b++) scaled.AsSpan(b * Q5_1Codec.BytesPerBlock + 2, 2).Clear();
        var w = new float[width];
        BlockCodecs.For(type).Dequantize(scaled, w);
        double sum = 0, magnitude = 0;
        int blockBytes = dot.ActivationBlockBytes;
        for (int b = 0; b < width / dot.BlockSize; b++)
        {
            ReadOnlySpan<byte> block = activations.AsSpan(b * blockBytes, blockBytes);
            (double d, int levels) = dot.Activations switch
            {
                GgmlType.Q8_K => (BinaryPrimitives.ReadSingleLittleEndian(block), Q8KActivations.LevelsOffset),
                GgmlType.Q8_1 => ((double)Fp16ToFloat(block), Q8_1Activations.LevelsOffset),
                _ => ((double)Fp16ToFloat(block), Q8_0Activations.LevelsOffset),
            };
            if (withSum)
            {
                double term = (double)Fp16ToFloat(weights.AsSpan(b * Q5_1Codec.BytesPerBlock + 2)) * Fp16ToFloat(block.Slice(Q8_1Activations.SumOffset));
                sum += term;
                magnitude += Math.Abs(term);
            }
            for (int i = 0; i < dot.BlockSize; i++)
            {
                double product = w[b * dot.BlockSize + i] * (d * (sbyte)block[levels + i]);
                sum += product;
                magnitude += Math.Abs(product);
            }
        }
        return (sum, magnitude);
    }

    private static float Fp16ToFloat(ReadOnlySpan<byte> bytes) => (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(bytes));

    // quantize_row_q8_K_ref leaves an all-zero block's bsums as they were; ours are zero, as a fresh buffer's are.
    private static void ClearUnwrittenSums(float[] x, byte[] blocks)
    {
        for (int b = 0; b < x.Length / Q8KActivations.BlockSize; b++)
            if (x.AsSpan(b * Q8KActivations.BlockSize, Q8KActivations.BlockSize).IndexOfAnyExcept(0f) < 0)
                blocks.AsSpan(b * Q8KActivations.BlockBytes + Q8KActivations.SumsOffset, 32).Clear();
    }
}
