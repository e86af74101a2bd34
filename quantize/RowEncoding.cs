using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Tune.Formats;

namespace Tune.Quantize;

/// <summary>
/// Rows between float32 and any type a quantised file holds: the block codecs, and F32/F16/BF16 for tensors that
/// are kept or fall back to F16 (tensor_type_fallback). f16 and bf16 decode exactly, as ggml's to_float does.
/// </summary>
internal static class RowEncoding
{
    public static bool IsFloat(GgmlType type) => type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16;

    public static void Decode(GgmlType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (type)
        {
            case GgmlType.F32: MemoryMarshal.Cast<byte, float>(src).CopyTo(dst); break;
            case GgmlType.F16: TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(src), dst); break;
            case GgmlType.BF16: FloatBits.ToFloat32(src, DType.BF16, dst); break;
            default: BlockCodecs.For(type).Dequantize(src, dst); break;
        }
    }

    /// <exception cref="NonFiniteWeightException">a block type is asked to encode a NaN or an infinity.</exception>
    public static void Encode(GgmlType type, ReadOnlySpan<float> src, Span<byte> dst)
    {
        switch (type)
        {
            case GgmlType.F32: MemoryMarshal.AsBytes(src).CopyTo(dst); break;
            // Round to nearest even, as ggml_fp32_to_fp16 and ggml's bf16 conversion do.
            case GgmlType.F16: TensorPrimitives.ConvertToHalf(src, MemoryMarshal.Cast<byte, Half>(dst)); break;
            case GgmlType.BF16: FloatBits.FromFloat32(src, DType.BF16, dst); break;
            default: BlockCodecs.For(type).Quantize(src, dst); break;
        }
    }
}
