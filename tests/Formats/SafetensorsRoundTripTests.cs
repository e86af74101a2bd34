using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Tune.Formats;

namespace Tune.Tests.Formats;

public sealed class SafetensorsRoundTripTests
{
    public static TheoryData<DType> AllDTypes => new(Enum.GetValues<DType>());

    [Theory]
    [MemberData(nameof(AllDTypes))]
    public void EachDTypeRoundTripsThroughOneFile(DType type)
    {
        using var dir = new TempDirectory();
        string path = dir.File("t.safetensors");
        SafetensorsWriter.Write(path, [SampleTensors.Source("w", type, 3, 5)], new Dictionary<string, string> { ["format"] = "pt" });

        using SafetensorsFile file = SafetensorsFile.Open(path);
        Assert.Equal(path, file.Path);
        TensorInfo info = Assert.Single(file.Tensors);
        Assert.Equal("w", info.Name);
        Assert.Equal(type, info.DType);
        Assert.Equal(new long[] { 3, 5 }, info.Shape);
        Assert.Equal(15, info.ElementCount);
        Assert.Equal(15 * type.ItemSize(), info.ByteLength);
        Assert.Equal(SampleTensors.Encode(type, 15), file.Bytes(info).ToArray());
        float[] values = new float[15];
        file.ReadFloat32(info, values);
        Assert.Equal(SampleTensors.Values(type, 15), values);
        Assert.Equal("pt", file.Metadata["format"]);
    }

    [Theory]
    [MemberData(nameof(AllDTypes))]
    public void EachDTypeRoundTripsThroughThreeShards(DType type)
    {
        using var dir = new TempDirectory();
        TensorSource[] tensors = Enumerable.Range(0, 5).Select(i => SampleTensors.Source($"t{i}", type, 4, i + 1)).ToArray();
        SafetensorsWriter.WriteSharded(dir.Path, tensors, 3);

        using var checkpoint = CheckpointDirectoryTests.OpenWithConfig(dir.Path);
        Assert.Equal(3, checkpoint.ShardFiles.Count);
        foreach (TensorSource t in tensors)
        {
            (SafetensorsFile file, TensorInfo info) = checkpoint.Locate(t.Name);
            Assert.Equal(type, info.DType);
            Assert.Equal(t.Shape, info.Shape);
            Assert.Equal(SampleTensors.Encode(type, t.ElementCount), file.Bytes(info).ToArray());
            Assert.Equal(SampleTensors.Values(type, t.ElementCount), checkpoint.ReadFloat32(t.Name));
        }
    }

    [Fact]
    public void MixedTensorsRoundTripIncludingScalarAndEmpty()
    {
        using var dir = new TempDirectory();
        string path = dir.File("mixed.safetensors");
        TensorSource[] tensors = SampleTensors.Mixed();
        SafetensorsWriter.Write(path, tensors);

        using SafetensorsFile file = SafetensorsFile.Open(path);
        Assert.Equal(tensors.Length, file.Tensors.Count);
        Assert.Empty(file.Metadata);
        foreach (TensorSource t in tensors)
        {
            TensorInfo info = file[t.Name];
            Assert.Equal(t.Shape, info.Shape);
            Assert.Equal(SampleTensors.Encode(t.DType, t.ElementCount), file.Bytes(info).ToArray());
        }
        Assert.Equal(1, file["model.norm.scale"].ElementCount);
        Assert.Equal(0, file["model.norm.empty"].ByteLength);
    }

    [Fact]
    public void WrittenHeaderHasTheReferenceLayout()
    {
        using var dir = new TempDirectory();
        string path = dir.File("layout.safetensors");
        SafetensorsWriter.Write(path, SampleTensors.Mixed(), new Dictionary<string, string> { ["format"] = "pt" });

        byte[] bytes = File.ReadAllBytes(path);
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, headerLength % 8);
        string header = Encoding.UTF8.GetString(bytes, 8, (int)headerLength);
        Assert.StartsWith("{\"__metadata__\":{\"format\":\"pt\"}", header);
        string json = header.TrimEnd(' ');
        Assert.EndsWith("}", json);
        Assert.InRange(header.Length - json.Length, 0, 7);

        using JsonDocument document = JsonDocument.Parse(header);
        long expectedOffset = 0;
        foreach (JsonProperty entry in document.RootElement.EnumerateObject().Where(p => p.Name != "__metadata__"))
        {
            JsonElement offsets = entry.Value.GetProperty("data_offsets");
            Assert.Equal(expectedOffset, offsets[0].GetInt64());
            expectedOffset = offsets[1].GetInt64();
        }
        Assert.Equal(bytes.Length - 8 - headerLength, expectedOffset);
    }

    [Fact]
    public void EveryTensorIsAlignedToItsItemSize()
    {
        using var dir = new TempDirectory();
        string path = dir.File("aligned.safetensors");
        SafetensorsWriter.Write(path, SampleTensors.Mixed());

        using SafetensorsFile file = SafetensorsFile.Open(path);
        foreach (TensorInfo info in file.Tensors) Assert.Equal(0, info.DataOffset % info.DType.ItemSize());
        // Same item size keeps the caller's order.
        string[] bf16 = file.Tensors.Where(t => t.DType == DType.BF16).Select(t => t.Name).ToArray();
        Assert.Equal(new[] { "model.embed_tokens.weight", "model.norm.empty", "lm_head.weight" }, bf16);
    }

    [Fact]
    public void ReadsAFileLaidOutAsTheReferenceImplementationWritesIt()
    {
        using var dir = new TempDirectory();
        string path = dir.File("reference.safetensors");
        // safetensors' Python save_file({"a": tensor([1.0, -2.0])}, metadata={"format": "pt"}): JSON padded with spaces to 8.
        string header = "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        header = header.PadRight((header.Length + 7) / 8 * 8);
        byte[] data = new byte[8];
        BinaryPrimitives.WriteSingleLittleEndian(data, 1.0f);
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(4), -2.0f);
        File.WriteAllBytes(path, [.. BitConverter.GetBytes((ulong)header.Length), .. Encoding.UTF8.GetBytes(header), .. data]);

        using SafetensorsFile file = SafetensorsFile.Open(path);
        TensorInfo a = file["a"];
        Assert.Equal(8 + header.Length, a.DataOffset);
        float[] values = new float[2];
        file.ReadFloat32(a, values);
        Assert.Equal(new[] { 1.0f, -2.0f }, values);
        Assert.Equal("pt", file.Metadata["format"]);
    }

    [Fact]
    public void TensorsAreListedInHeaderOrder()
    {
        using var dir = new TempDirectory();
        string path = dir.File("order.safetensors");
        RawSafetensors.Write(path,
            "{\"z\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]},\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 4);
        using SafetensorsFile file = SafetensorsFile.Open(path);
        Assert.Equal(new[] { "z", "a" }, file.Tensors.Select(t => t.Name));
        Assert.Equal(new byte[] { 3, 4 }, file.Bytes(file["z"]).ToArray());
    }

    [Fact]
    public unsafe void DataPointerSeesTheSameBytesAsBytes()
    {
        using var dir = new TempDirectory();
        string path = dir.File("p.safetensors");
        SafetensorsWriter.Write(path, SampleTensors.Mixed());
        using SafetensorsFile file = SafetensorsFile.Open(path);
        TensorInfo info = file["model.layers.0.token_ids"];
        var viaPointer = new ReadOnlySpan<byte>(file.DataPointer(info), (int)info.ByteLength);
        Assert.True(viaPointer.SequenceEqual(file.Bytes(info)));
    }

    [Fact]
    public void FillIsCalledOnceWithExactlyTheTensorsBytes()
    {
        using var dir = new TempDirectory();
        var calls = new List<(string Name, int Length)>();
        TensorSource Tracked(string name, DType type, params long[] shape)
        {
            TensorSource inner = SampleTensors.Source(name, type, shape);
            return inner with { Fill = span => { calls.Add((name, span.Length)); inner.Fill(span); } };
        }
        SafetensorsWriter.Write(dir.File("f.safetensors"), [Tracked("a", DType.F32, 10), Tracked("b", DType.BF16, 3), Tracked("c", DType.F32, 2)]);
        Assert.Equal(new[] { ("a", 40), ("c", 8), ("b", 6) }, calls);
    }

    [Fact]
    public void MissingTensorErrorNamesFileAndTensor()
    {
        using var dir = new TempDirectory();
        string path = dir.File("m.safetensors");
        SafetensorsWriter.Write(path, [SampleTensors.Source("a", DType.F32, 1)]);
        using SafetensorsFile file = SafetensorsFile.Open(path);
        Assert.False(file.TryGet("b", out _));
        var e = Assert.Throws<KeyNotFoundException>(() => file["b"]);
        Assert.Contains(path, e.Message);
        Assert.Contains("\"b\"", e.Message);
    }

    [Fact]
    public void TensorInfoFromAnotherFileIsRejected()
    {
        using var dir = new TempDirectory();
        SafetensorsWriter.Write(dir.File("one.safetensors"), [SampleTensors.Source("a", DType.F32, 1), SampleTensors.Source("b", DType.F32, 1)]);
        SafetensorsWriter.Write(dir.File("two.safetensors"), [SampleTensors.Source("b", DType.F32, 4)]);
        using SafetensorsFile one = SafetensorsFile.Open(dir.File("one.safetensors"));
        using SafetensorsFile two = SafetensorsFile.Open(dir.File("two.safetensors"));
        var e = Assert.Throws<ArgumentException>(() => one.ReadFloat32(two["b"], new float[4]));
        Assert.Contains("\"b\"", e.Message);
    }

    [Fact]
    public void TensorInfoWithAnEditedShapeIsRejected()
    {
        using var dir = new TempDirectory();
        string path = dir.File("s.safetensors");
        SafetensorsWriter.Write(path, [SampleTensors.Source("a", DType.F32, 2)]);
        using SafetensorsFile file = SafetensorsFile.Open(path);
        TensorInfo widened = file["a"] with { Shape = [1000] };
        Assert.Throws<ArgumentException>(() => file.ReadFloat32(widened, new float[1000]));
    }

    [Fact]
    public void DisposedFileRefusesReads()
    {
        using var dir = new TempDirectory();
        string path = dir.File("d.safetensors");
        SafetensorsWriter.Write(path, [SampleTensors.Source("a", DType.F32, 1)]);
        SafetensorsFile file = SafetensorsFile.Open(path);
        TensorInfo a = file["a"];
        file.Dispose();
        file.Dispose();
        Assert.Throws<ObjectDisposedException>(() => file.ReadFloat32(a, new float[1]));
    }

    [Fact]
    public void WrongDestinationLengthIsRejected()
    {
        using var dir = new TempDirectory();
        string path = dir.File("l.safetensors");
        SafetensorsWriter.Write(path, [SampleTensors.Source("a", DType.BF16, 6)]);
        using SafetensorsFile file = SafetensorsFile.Open(path);
        Assert.Throws<ArgumentException>(() => file.ReadFloat32(file["a"], new float[5]));
    }

    [Fact]
    public void WriterRejectsDuplicateNames()
    {
        using var dir = new TempDirectory();
        var e = Assert.Throws<ArgumentException>(() =>
            SafetensorsWriter.Write(dir.File("dup.safetensors"), [SampleTensors.Source("a", DType.F32, 1), SampleTensors.Source("a", DType.F32, 2)]));
        Assert.Contains("\"a\"", e.Message);
        Assert.Empty(dir.FileNames());
    }
}
