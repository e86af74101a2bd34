using System.Runtime.Intrinsics;

namespace Tune.Quantize;

/// <summary>
/// The float→integer steps of ggml's reference quantisers, reproduced for every input including the ones ggml
/// handles by accident (huge, subnormal, NaN intermediates), because the bytes must match.
/// </summary>
internal static class GgmlRounding
{
    // 1.5·2^23: adding it puts round-half-even(x) in the low mantissa bits for |x| ≤ 2^22.
    private const float RoundingBias = 12582912f;
    private const int MantissaMask = 0x007FFFFF;
    private const int MantissaOffset = 0x00400000;
    private const float TwoTo31 = 2147483648f;

    /// <summary>
    /// ggml-quants.c <c>nearest_int</c>: round half to even through the float mantissa. Beyond ±2^22 (and for
    /// NaN) it returns the same meaningless value ggml does, which the callers' clamps then reproduce.
    /// </summary>
    public static int NearestInt(float value) =>
        (BitConverter.SingleToInt32Bits(value + RoundingBias) & MantissaMask) - MantissaOffset;

    public static Vector256<int> NearestInt(Vector256<float> value) =>
        ((value + Vector256.Create(RoundingBias)).AsInt32() & Vector256.Create(MantissaMask)) - Vector256.Create(MantissaOffset);

    /// <summary>
    /// A C cast float→int as compiled for x86 (<c>cvttss2si</c>), where ggml's reference bytes come from: truncation,
    /// and int.MinValue for NaN and out-of-range values (.NET's own casts saturate instead). Narrower C casts
    /// (<c>(int8_t)</c>, <c>(uint8_t)</c>) keep the low bits of this.
    /// </summary>
    public static int TruncateToInt32(float value) =>
        value >= -TwoTo31 && value < TwoTo31 ? (int)value : int.MinValue;

    public static Vector256<int> TruncateToInt32(Vector256<float> value)
    {
        Vector256<float> inRange = Vector256.GreaterThanOrEqual(value, Vector256.Create(-TwoTo31))
            & Vector256.LessThan(value, Vector256.Create(TwoTo31));
        return Vector256.ConditionalSelect(inRange.AsInt32(), Vector256.ConvertToInt32Native(value), Vector256.Create(int.MinValue));
    }

    /// <summary>C <c>roundf</c> (Q8_0): half away from zero.</summary>
    public static float RoundHalfAwayFromZero(float value) => MathF.Round(value, MidpointRounding.AwayFromZero);

    public static Vector256<float> RoundHalfAwayFromZero(Vector256<float> value)
    {
        // value − trunc(value) is exact, so comparing it with ½ decides the tie rule without double rounding.
        Vector256<float> whole = Vector256.Truncate(value);
        Vector256<float> roundsOutward = Vector256.GreaterThanOrEqual(Vector256.Abs(value - whole), Vector256.Create(0.5f));
        Vector256<float> signedOne = (value.AsUInt32() & Vector256.Create(0x80000000u) | Vector256.Create(1f).AsUInt32()).AsSingle();
        return Vector256.ConditionalSelect(roundsOutward, whole + signedOne, whole);
    }
}
