using Tune.Formats;

namespace Tune.Tests.Formats;

public sealed class CheckpointDirectoryTests
{
    /// <summary>Adds the Coder-V2-Lite config.json if the directory has none, then opens it.</summary>
    internal static CheckpointDirectory OpenWithConfig(string directory)
    {
        string config = Path.Combine(directory, "config.json");
        if (!File.Exists(config)) File.WriteAllText(config, CoderV2LiteConfig.Json);
        return CheckpointDirectory.Open(directory);
    }

    private static void AssertReadsEveryTensor(CheckpointDirectory checkpoint, TensorSource[] tensors)
    {
        Assert.Equal(tensors.Select(t => t.Name).Order(StringComparer.Ordinal), checkpoint.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        foreach (TensorSource t in tensors)
        {
            Assert.True(checkpoint.Contains(t.Name));
            Assert.Equal(SampleTensors.Values(t.DType, t.ElementCount), checkpoint.ReadFloat32(t.Name));
        }
    }

    [Fact]
    public void OpensASingleFileCheckpoint()
    {
        using var dir = new TempDirectory();
        TensorSource[] tensors = SampleTensors.Mixed();
        SafetensorsWriter.WriteSharded(dir.Path, tensors, 1);

        using CheckpointDirectory checkpoint = OpenWithConfig(dir.Path);
        Assert.Equal(dir.Path, checkpoint.Directory);
        Assert.Equal(new[] { dir.File("model.safetensors") }, checkpoint.ShardFiles);
        Assert.Equal(2048, checkpoint.Config.HiddenSize);
        AssertReadsEveryTensor(checkpoint, tensors);
    }

    [Fact]
    public void OpensAShardedCheckpointThroughItsIndex()
    {
        using var dir = new TempDirectory();
        TensorSource[] tensors = SampleTensors.Mixed();
        SafetensorsWriter.WriteSharded(dir.Path, tensors, 3);

        using CheckpointDirectory checkpoint = OpenWithConfig(dir.Path);
        Assert.Equal(Enumerable.Range(1, 3).Select(i => dir.File($"model-{i:D5}-of-00003.safetensors")), checkpoint.ShardFiles);
        AssertReadsEveryTensor(checkpoint, tensors);
        (SafetensorsFile file, TensorInfo info) = checkpoint.Locate("lm_head.weight");
        Assert.Equal(dir.File("model-00003-of-00003.safetensors"), file.Path);
        Assert.Same(info, file["lm_head.weight"]);
    }

    [Fact]
    public void TakesShardNamesFromTheWeightMapWhateverTheirPatternOrOrder()
    {
        using var dir = new TempDirectory();
        // DeepSeek's own repos use a six-digit total; the index, listed out of order, is what counts.
        SafetensorsWriter.Write(dir.File("model-00002-of-000002.safetensors"), [SampleTensors.Source("b", DType.BF16, 3)]);
        SafetensorsWriter.Write(dir.File("model-00001-of-000002.safetensors"), [SampleTensors.Source("a", DType.F32, 2), SampleTensors.Source("c", DType.U8, 4)]);
        File.WriteAllText(dir.File("model.safetensors.index.json"), """
            {"metadata": {"total_size": 18},
             "weight_map": {"c": "model-00001-of-000002.safetensors", "b": "model-00002-of-000002.safetensors", "a": "model-00001-of-000002.safetensors"}}
            """);
        File.WriteAllBytes(dir.File("model.safetensors"), [1, 2, 3]);  // ignored: the index wins

        using CheckpointDirectory checkpoint = OpenWithConfig(dir.Path);
        Assert.Equal(new[] { dir.File("model-00001-of-000002.safetensors"), dir.File("model-00002-of-000002.safetensors") }, checkpoint.ShardFiles);
        Assert.Equal(SampleTensors.Values(DType.BF16, 3), checkpoint.ReadFloat32("b"));
        Assert.Equal(dir.File("model-00001-of-000002.safetensors"), checkpoint.Locate("c").File.Path);
    }

    [Fact]
    public void WithoutIndexOrModelSafetensorsOpensEverySafetensorsFile()
    {
        using var dir = new TempDirectory();
        SafetensorsWriter.Write(dir.File("b.safetensors"), [SampleTensors.Source("y", DType.I32, 2)]);
        SafetensorsWriter.Write(dir.File("a.safetensors"), [SampleTensors.Source("x", DType.F16, 2)]);
        using CheckpointDirectory checkpoint = OpenWithConfig(dir.Path);
        Assert.Equal(new[] { dir.File("a.safetensors"), dir.File("b.safetensors") }, checkpoint.ShardFiles);
        Assert.Equal(new[] { "x", "y" }, checkpoint.Tensors.Select(t => t.Name));
    }

    [Fact]
    public void SameTensorInTwoUnindexedFilesIsRejected()
    {
        using var dir = new TempDirectory();
        SafetensorsWriter.Write(dir.File("a.safetensors"), [SampleTensors.Source("x", DType.F32, 1)]);
        SafetensorsWriter.Write(dir.File("b.safetensors"), [SampleTensors.Source("x", DType.F32, 1)]);
        var e = Assert.Throws<InvalidDataException>(() => OpenWithConfig(dir.Path).Dispose());
        Assert.Contains("\"x\"", e.Message);
        Assert.Contains(dir.Path, e.Message);
    }

    [Fact]
    public void IndexEntryMissingFromItsShardIsRejected()
    {
        using var dir = new TempDirectory();
        SafetensorsWriter.WriteSharded(dir.Path, SampleTensors.Mixed(), 2);
        string index = dir.File("model.safetensors.index.json");
        File.WriteAllText(index, File.ReadAllText(index).Replace("\"weight_map\": {", "\"weight_map\": {\n    \"ghost.weight\": \"model-00001-of-00002.safetensors\","));
        var e = Assert.Throws<InvalidDataException>(() => OpenWithConfig(dir.Path).Dispose());
        Assert.Contains(index, e.Message);
        Assert.Contains("\"ghost.weight\"", e.Message);
        Assert.Contains("model-00001-of-00002.safetensors", e.Message);
    }

    [Fact]
    public void IndexPlacingATensorInTheWrongShardIsRejected()
    {
        using var dir = new TempDirectory();
        SafetensorsWriter.WriteSharded(dir.Path, SampleTensors.Mixed(), 2);
        string index = dir.File("model.safetensors.index.json");
        File.WriteAllText(index, File.ReadAllText(index).Replace(
            "\"lm_head.weight\": \"model-00002-of-00002.safetensors\"", "\"lm_head.weight\": \"model-00001-of-00002.safetensors\""));
        var e = Assert.Throws<InvalidDataException>(() => OpenWithConfig(dir.Path).Dispose());
        Assert.Contains("\"lm_head.weight\"", e.Message);
    }

    [Fact]
    public void ShardFileMissingFromTheDirectoryIsRejected()
    {
        using var dir = new TempDirectory();
        SafetensorsWriter.WriteSharded(dir.Path, SampleTensors.Mixed(), 2);
        File.Delete(dir.File("model-00002-of-00002.safetensors"));
        var e = Assert.Throws<FileNotFoundException>(() => OpenWithConfig(dir.Path).Dispose());
        Assert.Contains("model-00002-of-00002.safetensors", e.Message);
    }

    [Theory]
    [InlineData("../model-00001-of-00002.safetensors")]
    [InlineData("/etc/passwd")]
    public void WeightMapPointingOutsideTheDirectoryIsRejected(string file)
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("model.safetensors.index.json"), "{\"weight_map\": {\"a\": \"" + file + "\"}}");
        var e = Assert.Throws<InvalidDataException>(() => OpenWithConfig(dir.Path).Dispose());
        Assert.Contains("weight_map.a", e.Message);
    }

    [Fact]
    public void IndexThatIsNotJsonIsRejected()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("model.safetensors.index.json"), "{ weight_map: ");
        var e = Assert.Throws<InvalidDataException>(() => OpenWithConfig(dir.Path).Dispose());
        Assert.Contains("model.safetensors.index.json", e.Message);
    }

    [Fact]
    public void DamagedShardIsReportedByName()
    {
        using var dir = new TempDirectory();
        SafetensorsWriter.WriteSharded(dir.Path, SampleTensors.Mixed(), 2);
        File.WriteAllBytes(dir.File("model-00002-of-00002.safetensors"), [1, 2, 3]);
        var e = Assert.Throws<InvalidDataException>(() => OpenWithConfig(dir.Path).Dispose());
        Assert.Contains("model-00002-of-00002.safetensors", e.Message);
    }

    [Fact]
    public void LocatingAMissingTensorNamesTheDirectoryAndTensor()
    {
        using var dir = new TempDirectory();
        SafetensorsWriter.WriteSharded(dir.Path, SampleTensors.Mixed(), 1);
        using CheckpointDirectory checkpoint = OpenWithConfig(dir.Path);
        Assert.False(checkpoint.Contains("model.layers.99.mlp.gate.weight"));
        var e = Assert.Throws<KeyNotFoundException>(() => checkpoint.Locate("model.layers.99.mlp.gate.weight"));
        Assert.Contains(dir.Path, e.Message);
        Assert.Contains("model.layers.99.mlp.gate.weight", e.Message);
    }

    [Fact]
    public void MissingConfigIsFileNotFound()
    {
        using var dir = new TempDirectory();
        SafetensorsWriter.WriteSharded(dir.Path, SampleTensors.Mixed(), 1);
        var e = Assert.Throws<FileNotFoundException>(() => CheckpointDirectory.Open(dir.Path));
        Assert.Contains("config.json", e.Message);
    }

    [Fact]
    public void DirectoryWithoutWeightsIsFileNotFound()
    {
        using var dir = new TempDirectory();
        var e = Assert.Throws<FileNotFoundException>(() => OpenWithConfig(dir.Path));
        Assert.Contains(dir.Path, e.Message);
    }

    [Fact]
    public void InvalidConfigIsReportedBeforeTheWeights()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("config.json"), CoderV2LiteConfig.Json.Replace("\"greedy\"", "\"gready\""));
        var e = Assert.Throws<FormatException>(() => CheckpointDirectory.Open(dir.Path));
        Assert.Contains("topk_method", e.Message);
    }
}
