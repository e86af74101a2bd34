using System.Buffers.Binary;
using Tune.Formats;

namespace Tune.Tests.Formats;

/// <summary>Tensors with known contents: element i holds a small integer, exact in every dtype.</summary>
internal static class SampleTensors
{
    public static float Value(DType type, long i) => type == DType.U8 ? i % 251 : (i % 97) - 48;

    public static float[] Values(DType type, long count)
    {
        float[] values = new float[count];
        for (long i = 0; i < count; i++) values[i] = Value(type, i);
        return values;
    }

    public static byte[] Encode(DType type, long count)
    {
        byte[] bytes = new byte[count * type.ItemSize()];
        Span<byte> s = bytes;
        for (int i = 0; i < count; i++)
        {
            float v = Value(type, i);
            switch (type)
            {
                case DType.F32: BinaryPrimitives.WriteSingleLittleEndian(s[(i * 4)..], v); break;
                case DType.F16: BinaryPrimitives.WriteHalfLittleEndian(s[(i * 2)..], (Half)v); break;
                case DType.BF16: BinaryPrimitives.WriteUInt16LittleEndian(s[(i * 2)..], (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16)); break;
                case DType.I32: BinaryPrimitives.WriteInt32LittleEndian(s[(i * 4)..], (int)v); break;
                case DType.I64: BinaryPrimitives.WriteInt64LittleEndian(s[(i * 8)..], (long)v); break;
                case DType.U8: s[i] = (byte)v; break;
            }
        }
        return bytes;
    }

    public static TensorSource Source(string name, DType type, params long[] shape)
    {
        long count = shape.Aggregate(1L, (a, b) => a * b);
        return new TensorSource(name, type, shape, span => Encode(type, count).CopyTo(span));
    }

    /// <summary>A small model-like set: every dtype, odd sizes (so alignment matters), a scalar and an empty tensor.</summary>
    public static TensorSource[] Mixed() =>
    [
        Source("model.embed_tokens.weight", DType.BF16, 7, 5),
        Source("model.layers.0.input_layernorm.weight", DType.F32, 5),
        Source("model.layers.0.mlp.gate.weight", DType.F16, 3, 5),
        Source("model.layers.0.token_ids", DType.I64, 4),
        Source("model.layers.0.mask", DType.U8, 3),
        Source("model.layers.0.positions", DType.I32, 2, 3),
        Source("model.norm.scale", DType.F32),
        Source("model.norm.empty", DType.BF16, 0, 5),
        Source("lm_head.weight", DType.BF16, 7, 5),
    ];
}
