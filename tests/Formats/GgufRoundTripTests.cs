using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Tune.Formats;

namespace Tune.Tests.Formats;

/// <summary>GgufWriter output read back by GgufFile: every value type, every tensor byte, offsets and alignment.</summary>
public sealed class GgufRoundTripTests
{
    private static readonly KeyValuePair<string, GgufValue>[] EveryValueType =
    [
        new("general.architecture", GgufValue.String("deepseek2")),
        new("t.u8", GgufValue.UInt8(200)),
        new("t.i8", GgufValue.Int8(-100)),
        new("t.u16", GgufValue.UInt16(60000)),
        new("t.i16", GgufValue.Int16(-30000)),
        new("t.u32", GgufValue.UInt32(4_000_000_000)),
        new("t.i32", GgufValue.Int32(-2_000_000_000)),
        new("t.u64", GgufValue.UInt64(18_000_000_000_000_000_000)),
        new("t.i64", GgufValue.Int64(-9_000_000_000_000_000_000)),
        new("t.f32", GgufValue.Float32(0.0707f)),
        new("t.f64", GgufValue.Float64(Math.PI)),
        new("t.bool", GgufValue.Bool(true)),
        new("t.string", GgufValue.String("Ġthe <｜begin▁of▁sentence｜> \n")),
        new("t.empty", GgufValue.String("")),
        new("t.strings", GgufValue.Array(new[] { "a", "", "Ġb c", "日本語" })),
        new("t.i32s", GgufValue.Array(new[] { 1, -3, 5 })),
        new("t.f32s", GgufValue.Array(new[] { 1.5f, -0.25f })),
        new("t.bools", GgufValue.Array(new[] { true, false, true })),
        new("t.u64s", GgufValue.Array(new ulong[] { 1, ulong.MaxValue })),
        new("t.f64s", GgufValue.Array(new[] { 1e300, -1e-300 })),
        new("t.u8s", GgufValue.Array(new byte[] { 0, 255 })),
        new("t.empty_array", GgufValue.Array(Array.Empty<uint>())),
    ];

    private static byte[] Pattern(long length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static GgufTensorSource Tensor(string name, GgmlType type, long[] ne, byte[] bytes) =>
        new(name, type, ne, sink => sink.Write(bytes));

    [Fact]
    public void EveryValueTypeAndTensorTypeSurvivesTheRoundTrip()
    {
        using var dir = new TempDirectory();
        string path = dir.File("all.gguf");
        var tensors = new (string Name, GgmlType Type, long[] Ne)[]
        {
            ("f32", GgmlType.F32, [3]),
            ("f16", GgmlType.F16, [5, 3]),
            ("bf16", GgmlType.BF16, [7, 2, 3]),
            ("q8_0", GgmlType.Q8_0, [64, 3]),
            ("q4_k", GgmlType.Q4_K, [256, 2, 1, 2]),
        };
        byte[][] data = tensors.Select((t, i) => Pattern(t.Type.ByteCount(t.Ne), i)).ToArray();
        GgufWriter.Write(path, EveryValueType, tensors.Select((t, i) => Tensor(t.Name, t.Type, t.Ne, data[i])).ToList());

        using GgufFile file = GgufFile.Open(path);
        Assert.Equal(3u, file.Header.Version);
        Assert.Equal(32u, file.Header.Alignment);
        Assert.Equal(EveryValueType.Select(kv => kv.Key), file.Metadata.Select(kv => kv.Key));
        foreach (var (key, expected) in EveryValueType)
        {
            GgufValue actual = file[key];
            Assert.Equal(expected.Type, actual.Type);
            Assert.Equal(expected.ElementType, actual.ElementType);
            if (expected.Value is Array a) Assert.Equal(a.Cast<object>(), ((Array)actual.Value).Cast<object>());
            else Assert.Equal(expected.Value, actual.Value);
        }
        Assert.Equal(0, file.Header.DataOffset % 32);
        for (int i = 0; i < tensors.Length; i++)
        {
            GgufTensorInfo info = file.Tensor(tensors[i].Name);
            Assert.Equal(tensors[i].Type, info.Type);
            Assert.Equal(tensors[i].Ne, info.Dimensions);
            Assert.Equal(0, info.Offset % 32);
            Assert.Equal(data[i], file.Bytes(info).ToArray());
        }
        Assert.Equal(4_000_000_000u, file.Get<uint>("t.u32"));
        Assert.Equal(["a", "", "Ġb c", "日本語"], file.Get<string[]>("t.strings"));
    }

    [Fact]
    public void TheLayoutIsTheOneLlamaCppExpects()
    {
        var stream = new MemoryStream();
        byte[] a = Pattern(12, 1), b = Pattern(8, 2);
        GgufWriter.WriteTo(stream, [new("k", GgufValue.UInt32(7))], [Tensor("a", GgmlType.F32, [3], a), Tensor("b", GgmlType.F16, [4], b)]);
        byte[] file = stream.ToArray();

        Assert.Equal("GGUF"u8.ToArray(), file[..4]);
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(4)));
        Assert.Equal(2ul, BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(8)));
        Assert.Equal(1ul, BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(16)));
        // key "k": length 1, byte 'k', type 4 (u32), value 7
        Assert.Equal(1ul, BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(24)));
        Assert.Equal((byte)'k', file[32]);
        Assert.Equal(4u, BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(33)));
        Assert.Equal(7u, BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(37)));

        var header = GgufHeader.Read(file, file.Length, "memory");
        Assert.Equal(0, header.Tensors[0].Offset);
        Assert.Equal(32, header.Tensors[1].Offset);
        Assert.Equal(a, file.AsSpan((int)header.DataOffset, 12).ToArray());
        Assert.All(file.AsSpan((int)header.DataOffset + 12, 20).ToArray(), x => Assert.Equal(0, x));
        Assert.Equal(b, file.AsSpan((int)header.DataOffset + 32, 8).ToArray());
        Assert.Equal(header.DataOffset + 64, file.Length);
    }

    [Fact]
    public void GeneralAlignmentSetsTheAlignment()
    {
        var stream = new MemoryStream();
        GgufWriter.WriteTo(stream, [new(GgufHeader.AlignmentKey, GgufValue.UInt32(64))],
            [Tensor("a", GgmlType.F32, [3], Pattern(12, 1)), Tensor("b", GgmlType.F32, [1], Pattern(4, 2))]);
        byte[] file = stream.ToArray();
        var header = GgufHeader.Read(file, file.Length, "memory");
        Assert.Equal(64u, header.Alignment);
        Assert.Equal(0, header.DataOffset % 64);
        Assert.Equal(64, header.Tensors[1].Offset);
    }

    [Fact]
    public void PreEncodedBlocksAreWrittenAsGiven()
    {
        // What a quantiser hands the writer: Q8_0 blocks (fp16 scale + 32 int8) for two rows of 32.
        byte[] blocks = new byte[2 * 34];
        BinaryPrimitives.WriteUInt16LittleEndian(blocks, BitConverter.HalfToUInt16Bits((Half)0.5f));
        for (int i = 0; i < 32; i++) blocks[2 + i] = (byte)(sbyte)(i - 16);
        var stream = new MemoryStream();
        GgufWriter.WriteTo(stream, [], [Tensor("w", GgmlType.Q8_0, [32, 2], blocks)]);
        byte[] file = stream.ToArray();
        var header = GgufHeader.Read(file, file.Length, "memory");
        Assert.Equal(blocks, file.AsSpan((int)header.DataOffset, 68).ToArray());
    }

    public static TheoryData<string, Func<IReadOnlyList<KeyValuePair<string, GgufValue>>>, Func<IReadOnlyList<GgufTensorSource>>, string> BadInputs => new()
    {
        { "duplicate key", () => [new("k", GgufValue.Bool(true)), new("k", GgufValue.Bool(false))], () => [], "appears twice" },
        { "empty key", () => [new("", GgufValue.Bool(true))], () => [], "empty" },
        { "alignment 48", () => [new(GgufHeader.AlignmentKey, GgufValue.UInt32(48))], () => [], "power of two" },
        { "alignment i32", () => [new(GgufHeader.AlignmentKey, GgufValue.Int32(32))], () => [], "u32" },
        { "duplicate tensor", () => [], () => [Tensor("w", GgmlType.F32, [1], new byte[4]), Tensor("w", GgmlType.F32, [1], new byte[4])], "appears twice" },
        { "long name", () => [], () => [Tensor(new string('x', 64), GgmlType.F32, [1], new byte[4])], "63 bytes" },
        { "five dims", () => [], () => [Tensor("w", GgmlType.F32, [1, 1, 1, 1, 1], new byte[4])], "dimensions" },
        { "partial block", () => [], () => [Tensor("w", GgmlType.Q8_0, [16], new byte[34])], "whole q8_0 blocks" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void TheWriterRejectsWhatLlamaCppWouldRejectAndWritesNothing(string why,
        Func<IReadOnlyList<KeyValuePair<string, GgufValue>>> metadata, Func<IReadOnlyList<GgufTensorSource>> tensors, string message)
    {
        using var dir = new TempDirectory();
        string path = dir.File("bad.gguf");
        var e = Assert.Throws<ArgumentException>(() => GgufWriter.Write(path, metadata(), tensors()));
        Assert.Contains(message, e.Message);
        Assert.True(dir.FileNames().Length == 0, $"{why}: nothing may be written");
    }

    [Theory]
    [InlineData(3)]
    [InlineData(5)]
    public void ATensorWriterThatWritesTheWrongByteCountFailsAndLeavesNoFile(int bytes)
    {
        using var dir = new TempDirectory();
        string path = dir.File("short.gguf");
        var tensor = new GgufTensorSource("w", GgmlType.F32, [1], sink => sink.Write(new byte[bytes]));
        var e = Assert.Throws<InvalidOperationException>(() => GgufWriter.Write(path, [], [tensor]));
        Assert.Contains("\"w\"", e.Message);
        Assert.Empty(dir.FileNames());
    }

    [Fact]
    public void TensorBytesComeFromTheMappingWithoutACopy()
    {
        using var dir = new TempDirectory();
        string path = dir.File("f.gguf");
        float[] values = [1, 2, 3, 4];
        GgufWriter.Write(path, [], [Tensor("w", GgmlType.F32, [2, 2], MemoryMarshal.AsBytes(values.AsSpan()).ToArray())]);
        using GgufFile file = GgufFile.Open(path);
        Assert.Equal(values, MemoryMarshal.Cast<byte, float>(file.Bytes(file.Tensor("w"))).ToArray());
        var stray = file.Tensor("w") with { Offset = 32 };
        Assert.Throws<ArgumentException>(() => file.Bytes(stray));
    }
}
