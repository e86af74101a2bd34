using System.Text.Json;
using Tune.Formats;

namespace Tune.Tests.Formats;

public sealed class ShardedWriterTests
{
    [Fact]
    public void OneShardWritesModelSafetensorsWithoutIndex()
    {
        using var dir = new TempDirectory();
        IReadOnlyList<string> written = SafetensorsWriter.WriteSharded(dir.Path, SampleTensors.Mixed(), 1);
        Assert.Equal(new[] { dir.File("model.safetensors") }, written);
        Assert.Equal(new[] { "model.safetensors" }, dir.FileNames());
    }

    [Fact]
    public void ThreeShardsAreNamedAsTransformersNamesThemWithAnIndex()
    {
        using var dir = new TempDirectory();
        TensorSource[] tensors = SampleTensors.Mixed();
        IReadOnlyList<string> written = SafetensorsWriter.WriteSharded(dir.Path, tensors, 3, new Dictionary<string, string> { ["format"] = "pt" });

        string[] shardNames = ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"];
        Assert.Equal(shardNames.Select(dir.File).Append(dir.File("model.safetensors.index.json")), written);
        Assert.Equal(shardNames.Append("model.safetensors.index.json").Order(StringComparer.Ordinal), dir.FileNames());

        using JsonDocument index = JsonDocument.Parse(File.ReadAllText(dir.File("model.safetensors.index.json")));
        Assert.Equal(tensors.Sum(t => t.ByteLength), index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64());
        var weightMap = index.RootElement.GetProperty("weight_map").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        Assert.Equal(tensors.Select(t => t.Name).Order(StringComparer.Ordinal), weightMap.Keys);

        // In order: the shard number never decreases along the given tensor order, and every shard is used.
        int[] shardOfTensor = tensors.Select(t => Array.IndexOf(shardNames, weightMap[t.Name])).ToArray();
        Assert.Equal(shardOfTensor.Order(), shardOfTensor);
        Assert.Equal(new[] { 0, 1, 2 }, shardOfTensor.Distinct());

        foreach (string shard in shardNames)
        {
            using SafetensorsFile file = SafetensorsFile.Open(dir.File(shard));
            Assert.Equal(weightMap.Where(e => e.Value == shard).Select(e => e.Key).Order(StringComparer.Ordinal),
                file.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
            Assert.Equal("pt", file.Metadata["format"]);
        }
    }

    [Fact]
    public void ShardsBalanceBytes()
    {
        using var dir = new TempDirectory();
        // 12 equal tensors of 400 bytes: 3 shards of 4 each is the only most-balanced split.
        TensorSource[] tensors = Enumerable.Range(0, 12).Select(i => SampleTensors.Source($"w{i:D2}", DType.F32, 100)).ToArray();
        SafetensorsWriter.WriteSharded(dir.Path, tensors, 3);
        for (int shard = 1; shard <= 3; shard++)
        {
            using SafetensorsFile file = SafetensorsFile.Open(dir.File($"model-{shard:D5}-of-00003.safetensors"));
            Assert.Equal(4, file.Tensors.Count);
        }
    }

    [Fact]
    public void OneHugeTensorGetsAShardOfItsOwnAndNoShardIsEmpty()
    {
        using var dir = new TempDirectory();
        TensorSource[] tensors =
        [
            SampleTensors.Source("small0", DType.U8, 1),
            SampleTensors.Source("huge", DType.F32, 1000),
            SampleTensors.Source("small1", DType.U8, 1),
            SampleTensors.Source("small2", DType.U8, 1),
        ];
        SafetensorsWriter.WriteSharded(dir.Path, tensors, 3);
        string[][] names = Enumerable.Range(1, 3).Select(s =>
        {
            using SafetensorsFile file = SafetensorsFile.Open(dir.File($"model-{s:D5}-of-00003.safetensors"));
            return file.Tensors.Select(t => t.Name).ToArray();
        }).ToArray();
        Assert.Equal(new[] { "small0" }, names[0]);
        Assert.Equal(new[] { "huge" }, names[1]);
        Assert.Equal(new[] { "small1", "small2" }, names[2]);
    }

    [Fact]
    public void MoreShardsThanTensorsIsRejected()
    {
        using var dir = new TempDirectory();
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.WriteSharded(dir.Path, [SampleTensors.Source("a", DType.F32, 1)], 2));
    }

    [Fact]
    public void WritingOneShardRemovesAStaleIndexThatWouldShadowIt()
    {
        using var dir = new TempDirectory();
        SafetensorsWriter.WriteSharded(dir.Path, SampleTensors.Mixed(), 3);
        SafetensorsWriter.WriteSharded(dir.Path, [SampleTensors.Source("only", DType.F32, 2)], 1);
        Assert.DoesNotContain("model.safetensors.index.json", dir.FileNames());
        using CheckpointDirectory checkpoint = CheckpointDirectoryTests.OpenWithConfig(dir.Path);
        Assert.Equal(new[] { "only" }, checkpoint.Tensors.Select(t => t.Name));
    }

    [Fact]
    public void CreatesTheDirectory()
    {
        using var dir = new TempDirectory();
        string nested = Path.Combine(dir.Path, "out", "model");
        SafetensorsWriter.WriteSharded(nested, SampleTensors.Mixed(), 2);
        Assert.True(File.Exists(Path.Combine(nested, "model-00002-of-00002.safetensors")));
    }
}
