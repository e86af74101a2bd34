using Tune.Formats;
using Tune.Quantize;

namespace Tune.Tests.Quantize;

/// <summary>The dot kernels (scalar and vector) equal dequantise-then-dot up to float rounding.</summary>
public sealed class DotTests
{
    public static TheoryData<GgmlType> Types => Codecs.Types;

    [Theory]
    [MemberData(nameof(Types))]
    public void DotEqualsDequantizeThenDot(GgmlType type)
    {
        Codecs.Entry entry = Codecs.For(type);
        IBlockCodec codec = entry.Codec;
        var rows = new List<(string Name, byte[] Blocks, int Width)>();
        foreach (int width in codec.BlockSize == 32 ? new[] { 32, 128, 1408, 2048, 10944 } : [256, 512, 2048])
        {
            float[] weights = TestRows.Normal(width, width, 0.02f);
            var blocks = new byte[type.ByteCount([width])];
            codec.Quantize(weights, blocks);
            rows.Add(($"normal {width}", blocks, width));
        }
        byte[] random = GgmlAgreementTests.RandomBlocks(type, codec, blocks: 64, seed: 31);
        rows.Add(("random block bytes", random, random.Length / codec.BytesPerBlock * codec.BlockSize));

        foreach ((string name, byte[] blocks, int width) in rows)
        {
            float[] x = TestRows.Normal(width, 32 + width);
            var dequantized = new float[width];
            codec.Dequantize(blocks, dequantized);
            double expected = 0, magnitude = 0;
            for (int i = 0; i < width; i++)
            {
                expected += (double)dequantized[i] * x[i];
                magnitude += Math.Abs((double)dequantized[i] * x[i]);
            }
            double tolerance = 1e-5 * magnitude + 1e-30;
            foreach (KernelPath path in Codecs.AvailablePaths)
            {
                float actual = entry.DotOnPath(blocks, x, path);
                Assert.True(Math.Abs(actual - expected) <= tolerance,
                    $"{type} {name} {path}: dot {actual:R}, dequantise-then-dot {expected:R} (tolerance {tolerance:G3})");
            }
            Assert.Equal(entry.DotOnPath(blocks, x, KernelPaths.Best), codec.Dot(blocks, x));
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void DotRejectsMismatchedLengths(GgmlType type)
    {
        IBlockCodec codec = BlockCodecs.For(type);
        var blocks = new byte[2 * codec.BytesPerBlock];
        Assert.Throws<ArgumentException>(() => codec.Dot(blocks, new float[codec.BlockSize]));
        Assert.Throws<ArgumentException>(() => codec.Dot(blocks, new float[2 * codec.BlockSize + 1]));
    }
}
