using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Tune.Formats;

/// <summary>
/// Conversions between float32 and the 16-bit float formats of checkpoints. bf16 rounding is torch's
/// (c10::BFloat16): round to nearest, ties to even, every NaN becomes the quiet NaN 0x7FC0. f16 uses
/// <see cref="Half"/>, which also rounds to nearest even.
/// </summary>
public static class FloatBits
{
    public const ushort Bf16QuietNaN = 0x7FC0;

    public static float Bf16ToFloat(ushort b) => BitConverter.UInt32BitsToSingle((uint)b << 16);

    public static ushort FloatToBf16(float f)
    {
        if (float.IsNaN(f)) return Bf16QuietNaN;
        uint bits = BitConverter.SingleToUInt32Bits(f);
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1)) >> 16);
    }

    /// <summary>Decodes little-endian elements of <paramref name="type"/>; integers become the nearest float.</summary>
    public static void ToFloat32(ReadOnlySpan<byte> src, DType type, Span<float> dst)
    {
        RequireLengths(src.Length, type, dst.Length, nameof(src));
        switch (type)
        {
            case DType.F32:
                MemoryMarshal.Cast<byte, float>(src).CopyTo(dst);
                break;
            case DType.BF16:
                Bf16ToFloat32(MemoryMarshal.Cast<byte, ushort>(src), dst);
                break;
            case DType.F16:
                ReadOnlySpan<ushort> halves = MemoryMarshal.Cast<byte, ushort>(src);
                for (int i = 0; i < dst.Length; i++) dst[i] = (float)BitConverter.UInt16BitsToHalf(halves[i]);
                break;
            case DType.I32:
                ReadOnlySpan<int> ints = MemoryMarshal.Cast<byte, int>(src);
                for (int i = 0; i < dst.Length; i++) dst[i] = ints[i];
                break;
            case DType.I64:
                ReadOnlySpan<long> longs = MemoryMarshal.Cast<byte, long>(src);
                for (int i = 0; i < dst.Length; i++) dst[i] = longs[i];
                break;
            case DType.U8:
                for (int i = 0; i < dst.Length; i++) dst[i] = src[i];
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, "not a DType");
        }
    }

    /// <summary>Encodes float32 values as little-endian F32, F16 or BF16.</summary>
    public static void FromFloat32(ReadOnlySpan<float> src, DType type, Span<byte> dst)
    {
        RequireLengths(dst.Length, type, src.Length, nameof(dst));
        switch (type)
        {
            case DType.F32:
                src.CopyTo(MemoryMarshal.Cast<byte, float>(dst));
                break;
            case DType.BF16:
                Float32ToBf16(src, MemoryMarshal.Cast<byte, ushort>(dst));
                break;
            case DType.F16:
                Span<ushort> halves = MemoryMarshal.Cast<byte, ushort>(dst);
                for (int i = 0; i < src.Length; i++) halves[i] = BitConverter.HalfToUInt16Bits((Half)src[i]);
                break;
            default:
                throw new ArgumentException($"float32 values cannot be encoded as {type}; expected F32, F16 or BF16", nameof(type));
        }
    }

    private static void RequireLengths(int byteLength, DType type, int floatCount, string byteParameter)
    {
        if (byteLength != (long)floatCount * type.ItemSize())
            throw new ArgumentException(
                $"{byteLength} bytes of {type} are not {floatCount} elements of {type.ItemSize()} bytes", byteParameter);
    }

    private static void Bf16ToFloat32(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        ref ushort s = ref MemoryMarshal.GetReference(src);
        ref uint d = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(dst));
        nuint n = (nuint)src.Length, i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + (nuint)Vector512<ushort>.Count <= n; i += (nuint)Vector512<ushort>.Count)
            {
                (Vector512<uint> lo, Vector512<uint> hi) = Vector512.Widen(Vector512.LoadUnsafe(ref s, i));
                Vector512.ShiftLeft(lo, 16).StoreUnsafe(ref d, i);
                Vector512.ShiftLeft(hi, 16).StoreUnsafe(ref d, i + (nuint)Vector512<uint>.Count);
            }
        }
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + (nuint)Vector256<ushort>.Count <= n; i += (nuint)Vector256<ushort>.Count)
            {
                (Vector256<uint> lo, Vector256<uint> hi) = Vector256.Widen(Vector256.LoadUnsafe(ref s, i));
                Vector256.ShiftLeft(lo, 16).StoreUnsafe(ref d, i);
                Vector256.ShiftLeft(hi, 16).StoreUnsafe(ref d, i + (nuint)Vector256<uint>.Count);
            }
        }
        for (; i < n; i++) Unsafe.Add(ref d, i) = (uint)Unsafe.Add(ref s, i) << 16;
    }

    private static void Float32ToBf16(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        ref float s = ref MemoryMarshal.GetReference(src);
        ref ushort d = ref MemoryMarshal.GetReference(dst);
        nuint n = (nuint)src.Length, i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + (nuint)Vector512<ushort>.Count <= n; i += (nuint)Vector512<ushort>.Count)
            {
                Vector512<uint> lo = RoundToBf16(Vector512.LoadUnsafe(ref s, i));
                Vector512<uint> hi = RoundToBf16(Vector512.LoadUnsafe(ref s, i + (nuint)Vector512<float>.Count));
                Vector512.Narrow(lo, hi).StoreUnsafe(ref d, i);
            }
        }
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + (nuint)Vector256<ushort>.Count <= n; i += (nuint)Vector256<ushort>.Count)
            {
                Vector256<uint> lo = RoundToBf16(Vector256.LoadUnsafe(ref s, i));
                Vector256<uint> hi = RoundToBf16(Vector256.LoadUnsafe(ref s, i + (nuint)Vector256<float>.Count));
                Vector256.Narrow(lo, hi).StoreUnsafe(ref d, i);
            }
        }
        for (; i < n; i++) Unsafe.Add(ref d, i) = FloatToBf16(Unsafe.Add(ref s, i));
    }

    // The vector forms of FloatToBf16: the bf16 bits sit in the low half of each lane, ready to narrow.
    private static Vector512<uint> RoundToBf16(Vector512<float> v)
    {
        Vector512<uint> bits = v.AsUInt32();
        Vector512<uint> bias = Vector512.Create(0x7FFFu) + (Vector512.ShiftRightLogical(bits, 16) & Vector512<uint>.One);
        Vector512<uint> rounded = Vector512.ShiftRightLogical(bits + bias, 16);
        Vector512<uint> isNaN = ~Vector512.Equals(v, v).AsUInt32();
        return Vector512.ConditionalSelect(isNaN, Vector512.Create((uint)Bf16QuietNaN), rounded);
    }

    private static Vector256<uint> RoundToBf16(Vector256<float> v)
    {
        Vector256<uint> bits = v.AsUInt32();
        Vector256<uint> bias = Vector256.Create(0x7FFFu) + (Vector256.ShiftRightLogical(bits, 16) & Vector256<uint>.One);
        Vector256<uint> rounded = Vector256.ShiftRightLogical(bits + bias, 16);
        Vector256<uint> isNaN = ~Vector256.Equals(v, v).AsUInt32();
        return Vector256.ConditionalSelect(isNaN, Vector256.Create((uint)Bf16QuietNaN), rounded);
    }
}
