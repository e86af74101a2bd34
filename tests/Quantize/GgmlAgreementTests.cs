using System.Text;
using Tune.Formats;
using Tune.Quantize;

namespace Tune.Tests.Quantize;

/// <summary>Every codec against the real ggml: quantised bytes equal <c>ggml_quantize_chunk</c>'s, dequantised floats equal ggml's bits.</summary>
public sealed class GgmlAgreementTests
{
    public static TheoryData<GgmlType> Types => Codecs.Types;

    [Theory]
    [MemberData(nameof(Types))]
    public void QuantizedBytesEqualGgmlOnEveryCaseAndPath(GgmlType type)
    {
        Codecs.Entry entry = Codecs.For(type);
        var failures = new StringBuilder();
        long comparedBytes = 0;
        foreach (TestRows.Case c in TestRows.ForBlockSize(entry.Codec.BlockSize))
        {
            byte[] expected = GgmlOracle.Quantize(type, c.Values, c.Width);
            int rowBytes = expected.Length / c.Rows;
            var actual = new byte[expected.Length];
            for (int r = 0; r < c.Rows; r++)
                entry.Codec.Quantize(c.Values.AsSpan(r * c.Width, c.Width), actual.AsSpan(r * rowBytes, rowBytes));
            Compare(failures, $"{c} public", expected, actual, entry.Codec.BytesPerBlock);
            if (entry.QuantizeOnPath is { } quantizeOnPath)
            {
                foreach (KernelPath path in Codecs.AvailablePaths)
                {
                    Array.Clear(actual);
                    for (int r = 0; r < c.Rows; r++)
                        quantizeOnPath(c.Values.AsSpan(r * c.Width, c.Width), actual.AsSpan(r * rowBytes, rowBytes), path);
                    Compare(failures, $"{c} {path}", expected, actual, entry.Codec.BytesPerBlock);
                }
            }
            comparedBytes += expected.Length;
        }
        Assert.True(failures.Length == 0, $"{type}: bytes differ from ggml_quantize_chunk:\n{failures}");
        Assert.True(comparedBytes > 0);
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void ChunkOffsetsMatchRowByRowQuantisation(GgmlType type)
    {
        IBlockCodec codec = BlockCodecs.For(type);
        const int rows = 4, width = 512;
        float[] values = TestRows.Normal(rows * width, 21, 0.1f);
        int rowBytes = GgmlOracle.RowSize(type, width);
        var expected = new byte[rows * rowBytes];
        GgmlOracle.QuantizeChunk(type, values, expected, startRow: 0, rows: 1, perRow: width);
        GgmlOracle.QuantizeChunk(type, values, expected, startRow: 1, rows: 3, perRow: width);
        var actual = new byte[expected.Length];
        for (int r = 0; r < rows; r++) codec.Quantize(values.AsSpan(r * width, width), actual.AsSpan(r * rowBytes, rowBytes));
        Assert.Equal(expected, actual);
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void DequantizedValuesEqualGgmlBitForBit(GgmlType type)
    {
        IBlockCodec codec = BlockCodecs.For(type);
        var failures = new StringBuilder();
        foreach (TestRows.Case c in TestRows.ForBlockSize(codec.BlockSize))
            CompareDequantized(failures, c.ToString(), type, codec, GgmlOracle.Quantize(type, c.Values, c.Width), c.Values.Length);
        byte[] random = RandomBlocks(type, codec, blocks: 500, seed: 22);
        CompareDequantized(failures, "random block bytes", type, codec, random, random.Length / codec.BytesPerBlock * codec.BlockSize);
        Assert.True(failures.Length == 0, $"{type}: dequantised values differ from ggml's dequantize_row:\n{failures}");
    }

    private static void CompareDequantized(StringBuilder failures, string name, GgmlType type, IBlockCodec codec, byte[] blocks, int elements)
    {
        float[] expected = GgmlOracle.Dequantize(type, blocks, elements);
        var actual = new float[elements];
        codec.Dequantize(blocks, actual);
        for (int i = 0; i < elements; i++)
        {
            if (BitConverter.SingleToUInt32Bits(expected[i]) != BitConverter.SingleToUInt32Bits(actual[i]))
            {
                failures.AppendLine($"  {name}: element {i}: ggml {expected[i]:R}, ours {actual[i]:R}");
                return;
            }
        }
    }

    /// <summary>Random bytes everywhere, with finite random fp16 scales where the format has them.</summary>
    internal static byte[] RandomBlocks(GgmlType type, IBlockCodec codec, int blocks, int seed)
    {
        var random = new Random(seed);
        var bytes = new byte[blocks * codec.BytesPerBlock];
        random.NextBytes(bytes);
        int[] halfOffsets = type switch
        {
            GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q5_0 => [0],
            GgmlType.Q5_1 or GgmlType.Q4_K or GgmlType.Q5_K => [0, 2],
            GgmlType.Q6_K => [208],
            _ => throw new ArgumentOutOfRangeException(nameof(type)),
        };
        for (int b = 0; b < blocks; b++)
        {
            foreach (int offset in halfOffsets)
            {
                var scale = (Half)((float)(random.NextDouble() * 2 - 1) * MathF.Pow(10, random.Next(-6, 3)));
                BitConverter.TryWriteBytes(bytes.AsSpan(b * codec.BytesPerBlock + offset, 2), BitConverter.HalfToUInt16Bits(scale));
            }
        }
        return bytes;
    }

    private static void Compare(StringBuilder failures, string name, byte[] expected, byte[] actual, int bytesPerBlock)
    {
        int differences = 0, first = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            if (expected[i] == actual[i]) continue;
            if (first < 0) first = i;
            differences++;
        }
        if (first < 0) return;
        int block = first / bytesPerBlock;
        failures.AppendLine($"  {name}: {differences} bytes differ, first in block {block} at byte {first % bytesPerBlock}: " +
            $"ggml {System.Convert.ToHexString(expected, block * bytesPerBlock, bytesPerBlock)} ours {System.Convert.ToHexString(actual, block * bytesPerBlock, bytesPerBlock)}");
    }
}
