using Tune.Formats;
using Tune.Quantize;

namespace Tune.Tests.Quantize;

/// <summary>What the codecs refuse: non-finite weights (with their position), partial blocks, wrong buffer sizes.</summary>
public sealed class RowCheckTests
{
    public static TheoryData<GgmlType> Types => Codecs.Types;

    [Theory]
    [MemberData(nameof(Types))]
    public void NonFiniteWeightsAreRefusedWithTheirIndex(GgmlType type)
    {
        IBlockCodec codec = BlockCodecs.For(type);
        foreach ((int index, float value) in new[] { (37, float.NaN), (codec.BlockSize * 2 - 1, float.PositiveInfinity), (3, float.NegativeInfinity) })
        {
            float[] row = TestRows.Normal(codec.BlockSize * 2, 51);
            row[index] = value;
            var blocks = new byte[2 * codec.BytesPerBlock];
            var e = Assert.Throws<NonFiniteWeightException>(() => codec.Quantize(row, blocks));
            Assert.Equal(index, e.Index);
            Assert.Equal(BitConverter.SingleToUInt32Bits(value), BitConverter.SingleToUInt32Bits(e.Value));
        }
    }

    [Fact]
    public void FiniteCheckFindsTheFirstNonFiniteWeightOnEveryPath()
    {
        foreach (KernelPath path in Codecs.AvailablePaths)
        {
            RowChecks.RequireFinite(TestRows.Normal(37, 52), path);
            RowChecks.RequireFinite([float.MaxValue, -float.MaxValue, float.Epsilon, -0f], path);
            foreach (int index in new[] { 0, 7, 8, 31, 36 })
            {
                var row = new float[37];
                row[index] = float.NaN;
                if (index < 36) row[36] = float.PositiveInfinity;
                Assert.Equal(index, Assert.Throws<NonFiniteWeightException>(() => RowChecks.RequireFinite(row, path)).Index);
            }
        }
    }

    [Fact]
    public void NonFiniteWeightExceptionNamesTheTensor()
    {
        float[] row = new float[64];
        row[5] = float.NaN;
        var e = Assert.Throws<NonFiniteWeightException>(() => Q8_0Codec.Instance.Quantize(row, new byte[68]));
        NonFiniteWeightException located = e.InTensor("blk.3.ffn_down.weight", rowStart: 2048);
        Assert.Equal(2053, located.Index);
        Assert.Equal("blk.3.ffn_down.weight", located.TensorName);
        Assert.Contains("element 2053 of tensor 'blk.3.ffn_down.weight' is NaN", located.Message);
        Assert.Same(e, located.InnerException);
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void PartialBlocksAndWrongBufferSizesAreRefused(GgmlType type)
    {
        IBlockCodec codec = BlockCodecs.For(type);
        Assert.Throws<ArgumentException>(() => codec.Quantize(new float[codec.BlockSize + 16], new byte[2 * codec.BytesPerBlock]));
        Assert.Throws<ArgumentException>(() => codec.Quantize(new float[codec.BlockSize], new byte[codec.BytesPerBlock + 1]));
        Assert.Throws<ArgumentException>(() => codec.Dequantize(new byte[codec.BytesPerBlock], new float[2 * codec.BlockSize]));
    }
}
