using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tune.Quantize;

/// <summary>
/// Unpacking steps of the AVX2 dot kernels: 8 packed bytes to 8 int32 lanes (<c>vpmovsxbd</c>/<c>vpmovzxbd</c>)
/// and the fifth bit of Q5 levels from their bit-plane word.
/// </summary>
internal static unsafe class Avx2Unpack
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> SignedToFloat(byte* bytes) =>
        Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32((sbyte*)bytes));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Unsigned(byte* bytes) => Avx2.ConvertToVector256Int32(bytes);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ToFloat(Vector256<int> values) => Avx.ConvertToVector256Single(values);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort ReadUInt16(byte* bytes) => Unsafe.ReadUnaligned<ushort>(bytes);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint ReadUInt32(byte* bytes) => Unsafe.ReadUnaligned<uint>(bytes);

    /// <summary>16 in the lanes whose bit (index in <paramref name="bitIndex"/>) of <paramref name="word"/> is set, else 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> BitAsSixteen(Vector256<uint> word, Vector256<uint> bitIndex) =>
        Vector256.ShiftLeft(Avx2.ShiftRightLogicalVariable(word, bitIndex) & Vector256<uint>.One, 4).AsInt32();
}
