using Tune.Formats;

namespace Tune.Tests.Formats;

public sealed class DTypesTests
{
    [Theory]
    [InlineData(DType.F32, 4, "F32")]
    [InlineData(DType.F16, 2, "F16")]
    [InlineData(DType.BF16, 2, "BF16")]
    [InlineData(DType.I32, 4, "I32")]
    [InlineData(DType.I64, 8, "I64")]
    [InlineData(DType.U8, 1, "U8")]
    public void SizesAndNamesMatchSafetensors(DType type, int size, string name)
    {
        Assert.Equal(size, type.ItemSize());
        Assert.Equal(name, type.SafetensorsName());
        Assert.True(DTypes.TryParseSafetensors(name, out DType parsed));
        Assert.Equal(type, parsed);
    }

    [Theory]
    [InlineData("bf16")]
    [InlineData("F64")]
    [InlineData("F8_E4M3")]
    [InlineData("")]
    public void UnknownOrMiscasedNamesDoNotParse(string name)
    {
        Assert.False(DTypes.TryParseSafetensors(name, out _));
    }
}
