using System.Buffers.Binary;

namespace Tune.Convert;

/// <summary>
/// Q8_0 blocks of 32 values: an fp16 scale d = max|x|/127 and 32 int8 q = round(x/d), half away from zero. The same
/// float32 operations in the same order as ggml's quantize_row_q8_0_ref, so the bytes are identical (gguf.md §4.1).
/// </summary>
public static class Q8_0Blocks
{
    public const int BlockSize = 32;
    public const int BlockBytes = 34;

    /// <summary>Encodes <paramref name="values"/> (whole blocks) into <paramref name="blocks"/>; returns the bytes written.</summary>
    public static int Encode(ReadOnlySpan<float> values, Span<byte> blocks)
    {
        if (values.Length % BlockSize != 0)
            throw new ArgumentException($"{values.Length} values are not whole Q8_0 blocks of {BlockSize}", nameof(values));
        int count = values.Length / BlockSize;
        if (blocks.Length < count * BlockBytes)
            throw new ArgumentException($"{count} Q8_0 blocks need {count * BlockBytes} bytes, got {blocks.Length}", nameof(blocks));
        for (int b = 0; b < count; b++)
        {
            ReadOnlySpan<float> x = values.Slice(b * BlockSize, BlockSize);
            Span<byte> block = blocks.Slice(b * BlockBytes, BlockBytes);
            float amax = 0.0f;
            foreach (float v in x) amax = MathF.Max(amax, MathF.Abs(v));
            float d = amax / 127;
            float id = d != 0 ? 1.0f / d : 0.0f;
            BinaryPrimitives.WriteUInt16LittleEndian(block, BitConverter.HalfToUInt16Bits((Half)d));
            for (int j = 0; j < BlockSize; j++) block[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
        }
        return count * BlockBytes;
    }
}
