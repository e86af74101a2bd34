using System.Runtime.InteropServices;
using Tune.Formats;

namespace Tune.Tests.Formats;

public sealed class FloatBitsTests
{
    private static float F(uint bits) => BitConverter.UInt32BitsToSingle(bits);

    [Theory]
    [InlineData(0x3F800000u, (ushort)0x3F80)]  // 1.0
    [InlineData(0xC0000000u, (ushort)0xC000)]  // -2.0
    [InlineData(0x00000000u, (ushort)0x0000)]  // +0
    [InlineData(0x80000000u, (ushort)0x8000)]  // -0
    [InlineData(0x3F808000u, (ushort)0x3F80)]  // exactly halfway, lower neighbour even: down
    [InlineData(0x3F818000u, (ushort)0x3F82)]  // exactly halfway, upper neighbour even: up
    [InlineData(0x3F808001u, (ushort)0x3F81)]  // just above halfway: up
    [InlineData(0x3F807FFFu, (ushort)0x3F80)]  // just below halfway: down
    [InlineData(0xBF818000u, (ushort)0xBF82)]  // negative tie goes to even magnitude too
    [InlineData(0x7F800000u, (ushort)0x7F80)]  // +Inf
    [InlineData(0xFF800000u, (ushort)0xFF80)]  // -Inf
    [InlineData(0x7F7FFFFFu, (ushort)0x7F80)]  // float.MaxValue rounds up to Inf, as torch does
    [InlineData(0x00000001u, (ushort)0x0000)]  // smallest subnormal rounds to zero
    [InlineData(0x00008000u, (ushort)0x0000)]  // subnormal tie, even below
    [InlineData(0x00018000u, (ushort)0x0002)]  // subnormal tie, even above
    [InlineData(0x00010000u, (ushort)0x0001)]  // exact bf16 subnormal
    [InlineData(0x007FFFFFu, (ushort)0x0080)]  // largest subnormal rounds up to the smallest normal
    public void FloatToBf16RoundsToNearestEven(uint floatBits, ushort expected)
    {
        Assert.Equal(expected, FloatBits.FloatToBf16(F(floatBits)));
    }

    [Theory]
    [InlineData(0x7FC00000u)]  // quiet NaN
    [InlineData(0x7F800001u)]  // signalling NaN whose payload is only in the low bits: truncation would give Inf
    [InlineData(0xFFC00000u)]  // negative NaN
    [InlineData(0x7FFFFFFFu)]  // all-ones payload: rounding would carry into the sign
    public void FloatToBf16KeepsNaNAsTorchsQuietNaN(uint nanBits)
    {
        Assert.Equal((ushort)0x7FC0, FloatBits.FloatToBf16(F(nanBits)));
    }

    [Theory]
    [InlineData((ushort)0x3F80, 0x3F800000u)]
    [InlineData((ushort)0xC000, 0xC0000000u)]
    [InlineData((ushort)0x7F80, 0x7F800000u)]
    [InlineData((ushort)0xFF80, 0xFF800000u)]
    [InlineData((ushort)0x0001, 0x00010000u)]  // subnormal: 2^-133
    [InlineData((ushort)0x8000, 0x80000000u)]
    public void Bf16ToFloatIsExact(ushort bf16, uint expectedBits)
    {
        Assert.Equal(expectedBits, BitConverter.SingleToUInt32Bits(FloatBits.Bf16ToFloat(bf16)));
    }

    [Fact]
    public void Bf16NaNDecodesToNaN()
    {
        Assert.True(float.IsNaN(FloatBits.Bf16ToFloat(0x7FC0)));
        Assert.True(float.IsNaN(FloatBits.Bf16ToFloat(0xFF81)));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(15)]
    [InlineData(16)]
    [InlineData(33)]
    [InlineData(1000)]
    [InlineData(1037)]
    public void VectorBf16PathsAgreeWithScalarAtEveryLength(int count)
    {
        var random = new Random(count);
        uint[] bits = new uint[count];
        for (int i = 0; i < count; i++)
            bits[i] = (i % 11) switch
            {
                0 => 0x7F800001u,                                  // NaN that truncation would turn into Inf
                1 => 0x3F808000u | (uint)(random.Next(2) << 16),  // ties both ways
                2 => (uint)random.Next(0x00800000),                // subnormals
                _ => (uint)random.NextInt64(0, 1L << 32),
            };
        float[] floats = MemoryMarshal.Cast<uint, float>(bits).ToArray();

        byte[] encoded = new byte[count * 2];
        FloatBits.FromFloat32(floats, DType.BF16, encoded);
        ushort[] bf16 = MemoryMarshal.Cast<byte, ushort>(encoded).ToArray();
        for (int i = 0; i < count; i++) Assert.Equal(FloatBits.FloatToBf16(floats[i]), bf16[i]);

        float[] decoded = new float[count];
        FloatBits.ToFloat32(encoded, DType.BF16, decoded);
        for (int i = 0; i < count; i++)
            Assert.Equal(BitConverter.SingleToUInt32Bits(FloatBits.Bf16ToFloat(bf16[i])), BitConverter.SingleToUInt32Bits(decoded[i]));
    }

    [Theory]
    [InlineData(1.0f, (ushort)0x3C00)]
    [InlineData(-2.0f, (ushort)0xC000)]
    [InlineData(65504f, (ushort)0x7BFF)]  // largest f16
    [InlineData(65520f, (ushort)0x7C00)]  // halfway to the next step: rounds to Inf
    [InlineData(2049f, (ushort)0x6800)]   // tie between 2048 and 2050: even (2048)
    [InlineData(2051f, (ushort)0x6802)]   // tie between 2050 and 2052: even (2052)
    [InlineData(5.9604645e-8f, (ushort)0x0001)]  // smallest f16 subnormal
    public void F16EncodesWithRoundToNearestEven(float value, ushort expected)
    {
        byte[] bytes = new byte[2];
        FloatBits.FromFloat32([value], DType.F16, bytes);
        Assert.Equal(expected, BitConverter.ToUInt16(bytes));
        float[] back = new float[1];
        FloatBits.ToFloat32(bytes, DType.F16, back);
        Assert.Equal((float)BitConverter.UInt16BitsToHalf(expected), back[0]);
    }

    [Fact]
    public void F16KeepsNaN()
    {
        byte[] bytes = new byte[2];
        FloatBits.FromFloat32([float.NaN], DType.F16, bytes);
        float[] back = new float[1];
        FloatBits.ToFloat32(bytes, DType.F16, back);
        Assert.True(float.IsNaN(back[0]));
    }

    [Fact]
    public void F32RoundTripsBitForBit()
    {
        float[] values = [1.5f, -0f, float.Epsilon, float.PositiveInfinity, F(0x7FA00001)];
        byte[] bytes = new byte[values.Length * 4];
        FloatBits.FromFloat32(values, DType.F32, bytes);
        float[] back = new float[values.Length];
        FloatBits.ToFloat32(bytes, DType.F32, back);
        Assert.Equal(values.Select(BitConverter.SingleToUInt32Bits), back.Select(BitConverter.SingleToUInt32Bits));
    }

    [Fact]
    public void IntegersDecodeAsNumbers()
    {
        float[] dst = new float[2];
        FloatBits.ToFloat32(MemoryMarshal.AsBytes(new[] { -7, 1 << 20 }.AsSpan()), DType.I32, dst);
        Assert.Equal(new[] { -7f, 1 << 20 }, dst);
        FloatBits.ToFloat32(MemoryMarshal.AsBytes(new[] { -3L, 1L << 40 }.AsSpan()), DType.I64, dst);
        Assert.Equal(new[] { -3f, 1L << 40 }, dst);
        FloatBits.ToFloat32(new byte[] { 0, 255 }, DType.U8, dst);
        Assert.Equal(new[] { 0f, 255f }, dst);
    }

    [Theory]
    [InlineData(DType.I32)]
    [InlineData(DType.I64)]
    [InlineData(DType.U8)]
    public void FromFloat32RejectsIntegerTypes(DType type)
    {
        var e = Assert.Throws<ArgumentException>(() => FloatBits.FromFloat32([1f], type, new byte[type.ItemSize()]));
        Assert.Contains(type.ToString(), e.Message);
    }

    [Fact]
    public void MismatchedLengthsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => FloatBits.ToFloat32(new byte[6], DType.F32, new float[2]));
        Assert.Throws<ArgumentException>(() => FloatBits.FromFloat32(new float[3], DType.BF16, new byte[4]));
    }
}
