using System.Runtime.Intrinsics;
using Tune.Quantize;

namespace Tune.Tests.Quantize;

/// <summary>The fp16 conversions against ggml's GGML_FP32_TO_FP16 / GGML_FP16_TO_FP32, exhaustively where it counts.</summary>
public sealed class RoundingTests
{
    [Fact]
    public void Fp32ToFp16EqualsGgmlOnEveryTieAndItsNeighbours()
    {
        var mismatches = new List<string>();
        void Check(float f)
        {
            ushort expected = GgmlOracle.Fp32ToFp16(f), actual = Fp16.FromFloat(f);
            if (expected != actual && mismatches.Count < 10)
                mismatches.Add($"{f:R} (0x{BitConverter.SingleToUInt32Bits(f):X8}): ggml 0x{expected:X4}, ours 0x{actual:X4}");
        }
        // Every half value, and the float midpoint between it and the next (exact in float) with both neighbours.
        for (uint h = 0; h < 0x7C00; h++)
        {
            foreach (uint sign in new[] { 0u, 0x8000u })
            {
                float value = (float)BitConverter.UInt16BitsToHalf((ushort)(h | sign));
                float next = h + 1 == 0x7C00 ? (sign == 0 ? 65536f : -65536f) : (float)BitConverter.UInt16BitsToHalf((ushort)(h + 1 | sign));
                float midpoint = (value + next) / 2;
                Check(value);
                Check(midpoint);
                Check(MathF.BitIncrement(midpoint));
                Check(MathF.BitDecrement(midpoint));
            }
        }
        // A sweep over all float bit patterns, NaNs and infinities included.
        for (ulong bits = 0; bits <= uint.MaxValue; bits += 65521) Check(BitConverter.UInt32BitsToSingle((uint)bits));
        Check(float.PositiveInfinity);
        Check(float.NegativeInfinity);
        Check(float.NaN);
        Check(-float.NaN);
        Assert.True(mismatches.Count == 0, string.Join("\n", mismatches));
    }

    [Fact]
    public void Fp16ToFp32EqualsGgmlForEveryHalf()
    {
        for (int h = 0; h <= ushort.MaxValue; h++)
        {
            float expected = GgmlOracle.Fp16ToFp32((ushort)h), actual = Fp16.ToFloat((ushort)h);
            if (float.IsNaN(expected)) Assert.True(float.IsNaN(actual), $"0x{h:X4}");
            else Assert.Equal(BitConverter.SingleToUInt32Bits(expected), BitConverter.SingleToUInt32Bits(actual));
        }
    }

    [Fact]
    public void EightHalvesAtOnceGiveTheScalarBits()
    {
        Assert.True(System.Runtime.Intrinsics.X86.Avx2.IsSupported, "the vector conversion is AVX2");
        for (int h = 0; h <= ushort.MaxValue; h += 8)
        {
            Vector128<ushort> halves = Vector128.Create((ushort)h, (ushort)(h + 1), (ushort)(h + 2), (ushort)(h + 3), (ushort)(h + 4), (ushort)(h + 5),
                (ushort)(h + 6), (ushort)(h + 7));
            Vector256<float> values = Fp16.ToFloat(halves);
            for (int i = 0; i < 8; i++)
                Assert.True(BitConverter.SingleToUInt32Bits(Fp16.ToFloat((ushort)(h + i))) == BitConverter.SingleToUInt32Bits(values[i]),
                    $"0x{h + i:X4}: scalar {Fp16.ToFloat((ushort)(h + i)):R}, vector {values[i]:R}");
        }
    }

    [Theory]
    [InlineData(0.5f, 0)]
    [InlineData(1.5f, 2)]
    [InlineData(2.5f, 2)]
    [InlineData(-2.5f, -2)]
    [InlineData(-3.5f, -4)]
    [InlineData(4194303f, 4194303)]
    public void NearestIntRoundsHalfToEven(float value, int expected)
    {
        Assert.Equal(expected, GgmlRounding.NearestInt(value));
    }

    [Fact]
    public void VectorRoundingEqualsScalarRounding()
    {
        float[] values = [.. TestRows.Normal(4096, 41, 100), 0.5f, -0.5f, 1.5f, -2.5f, 126.5f, -127.5f, 0.49999997f,
            8388607.5f, 8388609f, 1e20f, -1e20f, 3e9f, -3e9f, 2147483520f, -2147483648f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, 0f, -0f];
        for (int i = 0; i + 8 <= values.Length; i += 8)
        {
            var v = Vector256.Create(values.AsSpan(i, 8));
            var rounded = GgmlRounding.RoundHalfAwayFromZero(v);
            var nearest = GgmlRounding.NearestInt(v);
            var truncated = GgmlRounding.TruncateToInt32(v);
            for (int k = 0; k < 8; k++)
            {
                float x = values[i + k];
                Assert.Equal(BitConverter.SingleToUInt32Bits(GgmlRounding.RoundHalfAwayFromZero(x)), BitConverter.SingleToUInt32Bits(rounded[k]));
                Assert.Equal(GgmlRounding.NearestInt(x), nearest[k]);
                Assert.Equal(GgmlRounding.TruncateToInt32(x), truncated[k]);
            }
        }
    }
}
