using System.Text.Json.Nodes;
using Tune.Cli;
using Tune.Convert;
using Tune.Formats;
using Tune.Tests.Model;

namespace Tune.Tests.Convert;

/// <summary>
/// `tune convert` on broken checkpoints: the error names the file and the tensor or field, the exit code is not 0,
/// and nothing is written (no output file, no temporary file left in the output directory).
/// </summary>
[Collection("torch")]
public sealed class BadInputTests
{
    /// <summary>A copy of a good single-shard checkpoint to damage.</summary>
    private static string CopyOfGoodCheckpoint()
    {
        string good = ConvertModels.Checkpoint(ConvertModels.Base);
        string copy = ConvertModels.NewDirectory("broken");
        foreach (string file in Directory.GetFiles(good)) File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
        return copy;
    }

    /// <summary>Rewrites model.safetensors from its own tensors, changed by <paramref name="edit"/>.</summary>
    private static void RewriteWeights(string dir, Func<List<TensorSource>, List<TensorSource>> edit)
    {
        string path = Path.Combine(dir, SafetensorsWriter.SingleFileName);
        byte[] original = File.ReadAllBytes(path);
        string temp = path + ".orig";
        File.WriteAllBytes(temp, original);
        using (var source = SafetensorsFile.Open(temp))
        {
            var tensors = source.Tensors.Select(t => new TensorSource(t.Name, t.DType, t.Shape, bytes => source.Bytes(t).CopyTo(bytes))).ToList();
            SafetensorsWriter.Write(path, edit(tensors));
        }
        File.Delete(temp);
    }

    private static async Task<string> FailsToConvert(string dir, params string[] messageParts)
    {
        string outDir = ConvertModels.NewDirectory("out");
        string gguf = Path.Combine(outDir, "model.gguf");
        var (output, error) = (new StringWriter(), new StringWriter());
        try
        {
            int exit = await Program.Run(["convert", "--model", dir, "--out", gguf], output, error);
            string message = error.ToString();
            Assert.True(exit != 0, $"exit code 0 for a broken checkpoint; stderr: {message}");
            Assert.StartsWith("error: ", message);
            foreach (string part in messageParts) Assert.Contains(part, message);
            Assert.Empty(Directory.GetFileSystemEntries(outDir));
            return message;
        }
        finally
        {
            ConvertModels.DeleteQuietly(outDir);
            if (dir.StartsWith(ConvertModels.Root, StringComparison.Ordinal)) ConvertModels.DeleteQuietly(dir);
        }
    }

    [Fact]
    public async Task AMissingTensorIsNamed()
    {
        string dir = CopyOfGoodCheckpoint();
        RewriteWeights(dir, t => t.Where(x => x.Name != "model.layers.1.mlp.experts.3.up_proj.weight").ToList());
        await FailsToConvert(dir, dir, "\"model.layers.1.mlp.experts.3.up_proj.weight\"", "missing");
    }

    [Fact]
    public async Task AnExtraTensorIsNamedWithItsFile()
    {
        string dir = CopyOfGoodCheckpoint();
        RewriteWeights(dir, t => [.. t, new TensorSource("model.layers.0.mlp.experts.0.up_proj.weight", DType.F32, [32, 64], b => b.Clear())]);
        await FailsToConvert(dir, "model.safetensors", "\"model.layers.0.mlp.experts.0.up_proj.weight\"", "not part of");
    }

    [Fact]
    public async Task AWrongShapeIsNamedWithBothShapes()
    {
        string dir = CopyOfGoodCheckpoint();
        RewriteWeights(dir, t => t.Select(x => x.Name == "model.layers.2.self_attn.kv_b_proj.weight"
            ? x with { Shape = [64, 64], Fill = b => b.Clear() }
            : x).ToList());
        await FailsToConvert(dir, "model.safetensors", "\"model.layers.2.self_attn.kv_b_proj.weight\"", "[64, 64]", "[128, 32]");
    }

    [Fact]
    public async Task AnUnsupportedArchitectureIsNamed()
    {
        string dir = CopyOfGoodCheckpoint();
        string configPath = Path.Combine(dir, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(configPath))!;
        config["architectures"] = new JsonArray("LlamaForCausalLM");
        File.WriteAllText(configPath, config.ToJsonString());
        await FailsToConvert(dir, "config.json", "architectures", "LlamaForCausalLM");
    }

    [Fact]
    public async Task AFileThatIsNotSafetensorsIsNamed()
    {
        string dir = CopyOfGoodCheckpoint();
        File.WriteAllText(Path.Combine(dir, SafetensorsWriter.SingleFileName), "this is not a safetensors file at all");
        await FailsToConvert(dir, "model.safetensors");
    }

    [Fact]
    public async Task ATruncatedShardIsNamed()
    {
        string dir = CopyOfGoodCheckpoint();
        string shard = Path.Combine(dir, SafetensorsWriter.SingleFileName);
        using (var stream = new FileStream(shard, FileMode.Open)) stream.SetLength(stream.Length - 1000);
        await FailsToConvert(dir, "model.safetensors", "past the end");
    }

    [Fact]
    public async Task NoTokenizerIsAnError()
    {
        string dir = CopyOfGoodCheckpoint();
        File.Delete(Path.Combine(dir, "tokenizer.json"));
        await FailsToConvert(dir, "tokenizer.json");
    }

    [Fact]
    public async Task AVocabularySmallerThanTheTokenizerIsAnError()
    {
        string dir = TestModels.Checkpoint(TestModels.Tiny);
        await FailsToConvert(dir, "tokenizer.json", "vocab_size 512");
    }

    [Fact]
    public void CancellingMidWriteLeavesNothing()
    {
        string checkpoint = ConvertModels.Checkpoint(ConvertModels.Base);
        string outDir = ConvertModels.NewDirectory("cancel");
        using var conversion = HfToGgufConversion.Prepare(new ConvertOptions(checkpoint, Path.Combine(outDir, "m.gguf")));
        using var cancel = new CancellationTokenSource();
        int reports = 0;
        Assert.ThrowsAny<OperationCanceledException>(() => conversion.Write(p =>
        {
            if (++reports == 3) cancel.Cancel();
        }, cancel.Token));
        Assert.True(reports >= 3);
        Assert.Empty(Directory.GetFileSystemEntries(outDir));
        ConvertModels.DeleteQuietly(outDir);
    }
}
