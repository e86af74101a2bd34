using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tune.Quantize;

/// <summary>
/// The fp16 fields of ggml blocks (little-endian IEEE binary16), converted with integer arithmetic. .NET's
/// <see cref="Half"/> conversions give the same values, but inlined into the dot loops (one per 32 weights) they
/// made those loops about 25 times slower (measured on .NET 10, x64).
/// </summary>
internal static class Fp16
{
    private const uint SignBit = 0x80000000;
    private const uint FloatInfinity = 0x7F800000;
    private const uint FloatQuietBit = 0x00400000;
    private const uint SmallestNormalHalfAsFloat = 0x38800000;   // 2^-14
    private const uint HalfOverflowAsFloat = 0x477FF000;         // 65520: the tie between 65504 and 2^16 rounds up
    private const uint ExponentRebias = (127u - 15) << 23;
    private const int DroppedMantissaBits = 23 - 10;
    private const ushort HalfInfinity = 0x7C00;
    private const ushort HalfQuietNaN = 0x7E00;
    private const float HalfSubnormalUnit = 5.9604645E-08f;      // 2^-24
    private const int SmallestNormalHalf = 0x0400;

    /// <summary>
    /// GGML_FP32_TO_FP16 (ggml-impl.h <c>ggml_compute_fp32_to_fp16</c>): round to nearest even, subnormals kept,
    /// overflow to infinity, every NaN to the quiet NaN 0x7E00 with its sign.
    /// </summary>
    public static ushort FromFloat(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        ushort sign = (ushort)(bits >> 16 & 0x8000);
        uint magnitude = bits & ~SignBit;
        if (magnitude > FloatInfinity) return (ushort)(sign | HalfQuietNaN);
        if (magnitude >= HalfOverflowAsFloat) return (ushort)(sign | HalfInfinity);
        if (magnitude >= SmallestNormalHalfAsFloat)
        {
            uint roundHalfEven = (1u << (DroppedMantissaBits - 1)) - 1 + (magnitude >> DroppedMantissaBits & 1);
            return (ushort)(sign | (magnitude + roundHalfEven - ExponentRebias) >> DroppedMantissaBits);
        }
        // Below 2^-14 the half is a multiple of 2^-24: adding 0.5 (whose ulp is 2^-24) lets the FPU round to it,
        // ties to even, and the count of units lands in the low mantissa bits (0x400 when it rounds up to normal).
        float shifted = BitConverter.UInt32BitsToSingle(magnitude) + 0.5f;
        return (ushort)(sign | (BitConverter.SingleToUInt32Bits(shifted) - BitConverter.SingleToUInt32Bits(0.5f)));
    }

    /// <summary>
    /// GGML_FP16_TO_FP32: exact, every binary16 value is a float (NaNs come back quiet, as in ggml). Normal halves
    /// are rebiased in the integers; subnormal ones (weights' scales often are: below 6.1e-5) are their count of
    /// 2^-24 units, converted and scaled, so that no float operation ever sees a subnormal operand, which costs a
    /// microcode assist of a hundred cycles or more (it halved the speed of the q6_K head of the Lite-shaped model).
    /// The choice is a select, not a branch: the scales of one tensor mix both kinds.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloat(ushort half)
    {
        uint magnitude = (uint)(half & 0x7FFF);
        if (magnitude >= HalfInfinity) return InfinityOrNaN(half);
        uint normal = (magnitude << DroppedMantissaBits) + ExponentRebias;
        uint subnormal = BitConverter.SingleToUInt32Bits((int)magnitude * HalfSubnormalUnit);
        uint isSubnormal = (uint)(((int)magnitude - SmallestNormalHalf) >> 31);
        return BitConverter.UInt32BitsToSingle((uint)(half & 0x8000) << 16 | (normal & ~isSubnormal) | (subnormal & isSubnormal));
    }

    /// <summary>
    /// <see cref="ToFloat(ushort)"/> of eight halves at once (AVX2), the same bits. Infinities and NaNs take the
    /// normal road with the exponent rebiased further, to all ones, and NaNs get the quiet bit.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ToFloat(Vector128<ushort> halves)
    {
        Vector256<int> bits = Avx2.ConvertToVector256Int32(halves);
        Vector256<int> magnitude = bits & Vector256.Create(0x7FFF);
        Vector256<int> infinityOrNaN = Vector256.GreaterThan(magnitude, Vector256.Create(HalfInfinity - 1));
        Vector256<int> nan = Vector256.GreaterThan(magnitude, Vector256.Create((int)HalfInfinity));
        Vector256<int> normal = Vector256.ShiftLeft(magnitude, DroppedMantissaBits) + Vector256.Create((int)ExponentRebias)
                                + (infinityOrNaN & Vector256.Create((int)(FloatInfinity - ExponentRebias - ((uint)HalfInfinity << DroppedMantissaBits))))
                                | (nan & Vector256.Create((int)FloatQuietBit));
        Vector256<int> subnormal = (Avx.ConvertToVector256Single(magnitude) * Vector256.Create(HalfSubnormalUnit)).AsInt32();
        Vector256<int> value = Vector256.ConditionalSelect(Vector256.LessThan(magnitude, Vector256.Create(SmallestNormalHalf)), subnormal, normal);
        return (value | Vector256.ShiftLeft(bits & Vector256.Create(0x8000), 16)).AsSingle();
    }

    private static float InfinityOrNaN(ushort half) => BitConverter.UInt32BitsToSingle(
        (uint)(half & 0x8000) << 16 | FloatInfinity | (uint)(half & 0x03FF) << DroppedMantissaBits | ((half & 0x03FF) != 0 ? FloatQuietBit : 0));
}
