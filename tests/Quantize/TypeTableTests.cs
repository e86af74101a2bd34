using Tune.Formats;
using Tune.Quantize;

namespace Tune.Tests.Quantize;

/// <summary>The block geometry the codecs and the GGUF writer share (<see cref="GgmlTypes"/>) against ggml's, and the codec lookup.</summary>
public sealed class TypeTableTests
{
    [Fact]
    public void BlockGeometryEqualsGgmlForEveryType()
    {
        foreach (GgmlType type in Enum.GetValues<GgmlType>())
        {
            Assert.True(GgmlOracle.BlockSize(type) == type.BlockSize(), $"{type} block size");
            Assert.True(GgmlOracle.TypeSize(type) == type.BlockBytes(), $"{type} block bytes");
            long elements = 8L * type.BlockSize();
            Assert.Equal(GgmlOracle.RowSize(type, elements), type.ByteCount([elements]));
        }
    }

    [Fact]
    public void CodecsDescribeTheirOwnType()
    {
        foreach (GgmlType type in BlockCodecs.Types)
        {
            IBlockCodec codec = BlockCodecs.For(type);
            Assert.Equal(type, codec.Type);
            Assert.Equal(type.BlockSize(), codec.BlockSize);
            Assert.Equal(type.BlockBytes(), codec.BytesPerBlock);
        }
        Assert.Null(BlockCodecs.TryGet(GgmlType.Q2_K));
        Assert.Contains("q6_K", Assert.Throws<NotSupportedException>(() => BlockCodecs.For(GgmlType.F16)).Message);
    }
}
