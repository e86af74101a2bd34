using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Tune.Formats;

namespace Tune.Tests.Convert;

/// <summary>A GGUF tensor's values as float32, decoded independently of the converter's encoders.</summary>
internal static class GgufTensorValues
{
    public static float[] Read(GgufFile file, string name)
    {
        GgufTensorInfo t = file.Tensor(name);
        ReadOnlySpan<byte> bytes = file.Bytes(t);
        var values = new float[t.ElementCount];
        switch (t.Type)
        {
            case GgmlType.F32:
                MemoryMarshal.Cast<byte, float>(bytes).CopyTo(values);
                break;
            case GgmlType.F16:
                for (int i = 0; i < values.Length; i++) values[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(bytes[(2 * i)..]);
                break;
            case GgmlType.BF16:
                for (int i = 0; i < values.Length; i++) values[i] = BitConverter.UInt32BitsToSingle((uint)BinaryPrimitives.ReadUInt16LittleEndian(bytes[(2 * i)..]) << 16);
                break;
            case GgmlType.Q8_0:
                for (int b = 0; b < values.Length / 32; b++)
                {
                    float d = (float)BinaryPrimitives.ReadHalfLittleEndian(bytes[(34 * b)..]);
                    for (int j = 0; j < 32; j++) values[32 * b + j] = (sbyte)bytes[34 * b + 2 + j] * d;
                }
                break;
            default:
                throw new NotSupportedException($"{name}: {t.Type}");
        }
        return values;
    }
}
