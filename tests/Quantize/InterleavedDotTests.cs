using Tune.Formats;
using Tune.Quantize;

namespace Tune.Tests.Quantize;

/// <summary>
/// The kernels over rows interleaved eight at a time (<see cref="InterleavedQ4K"/>, <see cref="InterleavedBlock32"/>)
/// give, row for row, the bits of the kernel llama.cpp runs on the same rows: its repacked q4_K_8x8 GEMV for q4_K,
/// ggml's vec_dot for q5_0 and q8_0 (from the prebuilt AVX2 libggml-cpu), and the bits of the row-at-a-time kernel
/// that follows the same order. Rows are our codec's (the widths of DeepSeek-V2-Lite's matrices) and random block
/// bytes, whose scales span twelve decades, so a byte put in the wrong place cannot go unseen.
/// </summary>
public sealed unsafe class InterleavedDotTests
{
    private const int Rows = 3 * IntegerDot.GroupRows;

    public static TheoryData<GgmlType> Types => new([GgmlType.Q4_K, GgmlType.Q5_0, GgmlType.Q8_0]);

    [Theory]
    [MemberData(nameof(Types))]
    public void GroupsGiveLlamaCppsBitsRowForRow(GgmlType type)
    {
        Assert.True(GgmlCpuOracle.Runs, "the interleaved kernels and ggml's prebuilt AVX2 kernels (the oracle) need a CPU with AVX2 and FMA");
        IntegerDot dot = IntegerDot.For(type)!;
        IBlockCodec codec = BlockCodecs.For(type);
        Assert.True(dot.GroupBlockBytes > 0, $"{type} has no interleaved kernel");
        foreach (int width in codec.BlockSize == 32 ? new[] { 128, 1408, 10944 } : [256, 2048, 2816])
        {
            int blocks = width / codec.BlockSize, rowBytes = blocks * codec.BytesPerBlock;
            byte[] quantised = new byte[Rows * rowBytes];
            for (int r = 0; r < Rows; r++)
                codec.Quantize(TestRows.Normal(width, 31 * r + width, 0.02f), quantised.AsSpan(r * rowBytes, rowBytes));
            Check(type, dot, $"normal {width}", quantised, width);
            Check(type, dot, $"random block bytes {width}", GgmlAgreementTests.RandomBlocks(type, codec, Rows * blocks, seed: width), width);
        }
    }

    [Fact]
    public void FourTokensAtOnceGiveEachTokensBits()
    {
        Assert.True(GgmlCpuOracle.Runs, "the interleaved kernels need a CPU with AVX2 and FMA");
        IntegerDot dot = IntegerDot.For(GgmlType.Q4_K)!;
        Assert.True(dot.DotsFourTokensAGroup, "q4_K has a four-token group kernel");
        const int Width = 2048, Tokens = 4;
        int blocks = Width / dot.BlockSize, rowBytes = blocks * dot.WeightBlockBytes, activationRow = dot.ActivationRowBytes(Width);
        byte[] weights = GgmlAgreementTests.RandomBlocks(GgmlType.Q4_K, BlockCodecs.For(GgmlType.Q4_K), IntegerDot.GroupRows * blocks, seed: 9);
        byte[] activations = new byte[Tokens * activationRow];
        for (int t = 0; t < Tokens; t++)
            dot.QuantizeActivations(TestRows.Normal(Width, 40 + t, sigma: t + 1), activations.AsSpan(t * activationRow, activationRow));
        byte[] group = new byte[blocks * dot.GroupBlockBytes];
        // Results of token t at t·stride, the stride wider than a group so that a misplaced store shows as a non-zero gap.
        const int Stride = 2 * IntegerDot.GroupRows;
        float[] together = new float[Tokens * Stride], alone = new float[Tokens * IntegerDot.GroupRows];
        fixed (byte* w = weights)
        fixed (byte* g = group)
        fixed (byte* a = activations)
        fixed (float* y = together, z = alone)
        {
            dot.Interleave(w, rowBytes, blocks, g);
            dot.DotGroupFour(g, blocks, a, activationRow, y, Stride);
            for (int t = 0; t < Tokens; t++) dot.DotGroup(g, blocks, a + t * activationRow, z + t * IntegerDot.GroupRows);
        }
        for (int t = 0; t < Tokens; t++)
            for (int r = 0; r < IntegerDot.GroupRows; r++)
            {
                Assert.True(BitConverter.SingleToInt32Bits(alone[t * IntegerDot.GroupRows + r]) == BitConverter.SingleToInt32Bits(together[t * Stride + r]),
                    $"token {t} row {r}: four at once {together[t * Stride + r]:R}, alone {alone[t * IntegerDot.GroupRows + r]:R}");
                Assert.Equal(0f, together[t * Stride + IntegerDot.GroupRows + r]);
            }
        Assert.True(alone.Distinct().Count() > alone.Length / 2, "results too alike to tell tokens and rows apart");
    }

    private static void Check(GgmlType type, IntegerDot dot, string name, byte[] weights, int width)
    {
        int blocks = width / dot.BlockSize, rowBytes = blocks * dot.WeightBlockBytes;
        float[] x = TestRows.Normal(width, 5 + width);
        byte[] activations = new byte[dot.ActivationRowBytes(width)];
        dot.QuantizeActivations(x, activations);
        byte[] groups = new byte[Rows / IntegerDot.GroupRows * blocks * dot.GroupBlockBytes];
        Assert.Equal(type == GgmlType.Q4_K ? weights.Length * 1184 / 1152 : weights.Length, groups.Length);
        float[] interleaved = new float[Rows], rowByRow = new float[Rows];
        fixed (byte* w = weights)
        fixed (byte* g = groups)
        fixed (byte* a = activations)
        fixed (float* y = interleaved, z = rowByRow)
        {
            for (int group = 0; group < Rows / IntegerDot.GroupRows; group++)
            {
                byte* target = g + (long)group * blocks * dot.GroupBlockBytes;
                dot.Interleave(w + (long)group * IntegerDot.GroupRows * rowBytes, rowBytes, blocks, target);
                dot.DotGroup(target, blocks, a, y + group * IntegerDot.GroupRows);
            }
            for (int r = 0; r < Rows; r++) dot.Dot(w + (long)r * rowBytes, blocks, a, activations.Length, 1, z + r, 1, KernelPath.Vector256);
        }
        float[] llama = type == GgmlType.Q4_K
            ? GgmlCpuOracle.GemvQ4K8x8(GgmlCpuOracle.RepackQ4K(weights, Rows, blocks), activations, width, Rows)
            : Enumerable.Range(0, Rows).Select(r => GgmlCpuOracle.VecDot(type, dot.Activations, weights.AsSpan(r * rowBytes, rowBytes), activations, width)).ToArray();
        for (int r = 0; r < Rows; r++)
        {
            Assert.True(BitConverter.SingleToInt32Bits(llama[r]) == BitConverter.SingleToInt32Bits(interleaved[r]),
                $"{type} {name} row {r}: interleaved {interleaved[r]:R}, llama.cpp's kernel {llama[r]:R}");
            Assert.True(BitConverter.SingleToInt32Bits(rowByRow[r]) == BitConverter.SingleToInt32Bits(interleaved[r]),
                $"{type} {name} row {r}: interleaved {interleaved[r]:R}, row at a time {rowByRow[r]:R}");
        }
        Assert.True(interleaved.Distinct().Count() > Rows / 2, $"{type} {name}: results too alike to tell rows apart");
    }
}
