using Tune.Cli;
using Tune.Formats;
using Tune.Model;
using Tune.Model.Tokenization;
using Tune.Tests.Model;

namespace Tune.Tests.Cli;

/// <summary>The `tune` verbs through the real entry point, with captured standard output and error.</summary>
[Collection("torch")]
public sealed class CliTests
{
    private static async Task<(int Exit, string Out, string Err)> Tune(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = await Program.Run(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }

    private static string NewDirectory() => Path.Combine(TestModels.Root, $"cli-{Guid.NewGuid():N}");

    [Fact]
    public async Task NewWritesTheHuggingFaceLayoutThatInspectDescribes()
    {
        string dir = NewDirectory();
        var (exit, output, _) = await Tune("new", "--config", "tiny", "--out", dir, "--shards", "2", "--seed", "3");
        Assert.Equal(0, exit);
        Assert.Contains("13,313,056 parameters", output);
        foreach (string file in new[] { "config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors",
                     "model-00002-of-00002.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json" })
            Assert.True(File.Exists(Path.Combine(dir, file)), $"{file} is missing");
        Assert.Equal("bfloat16", DeepSeekV2Config.Load(Path.Combine(dir, "config.json")).TorchDtype);

        (exit, output, _) = await Tune("inspect", dir);
        Assert.Equal(0, exit);
        Assert.Contains("13,313,056 total, 6,698,016 active per token", output);
        Assert.Contains("BF16 83 tensors", output);
        Assert.Contains("shards         2", output);
        Assert.DoesNotContain("missing", output);
    }

    [Fact]
    public async Task TheSameSeedWritesTheSameBytes()
    {
        string a = NewDirectory(), b = NewDirectory(), c = NewDirectory();
        Assert.Equal(0, (await Tune("new", "--config", "tiny", "--out", a, "--seed", "5")).Exit);
        Assert.Equal(0, (await Tune("new", "--config", "tiny", "--out", b, "--seed", "5")).Exit);
        Assert.Equal(0, (await Tune("new", "--config", "tiny", "--out", c, "--seed", "6")).Exit);
        byte[] first = File.ReadAllBytes(Path.Combine(a, "model.safetensors"));
        Assert.Equal(first, File.ReadAllBytes(Path.Combine(b, "model.safetensors")));
        Assert.NotEqual(first, File.ReadAllBytes(Path.Combine(c, "model.safetensors")));
    }

    [Fact]
    public async Task GreedyGenerateWritesExactlyWhatTheGeneratorProduces()
    {
        string dir = TestModels.Checkpoint(TestModels.Tiny with { VocabSize = 102400 });
        string prefix = "def add(a, b):\n    ", suffix = "\n    return c";
        var (exit, output, error) = await Tune("generate", "--model", dir, "--fim-prefix", prefix, "--fim-suffix", suffix,
            "--max-tokens", "12", "--device", "cpu");
        Assert.True(exit == 0, error);

        DeepSeekTokenizer tokenizer = DeepSeekTokenizer.Load(dir);
        using var checkpoint = CheckpointDirectory.Open(dir);
        using var model = DeepSeekV2ForCausalLM.Load(checkpoint, TorchRuntime.Cpu);
        int[] prompt = FimPrompt.Build(tokenizer, prefix, suffix).Ids;
        int[] ids = new TextGenerator(model).Generate(prompt, 12, new SamplingOptions(), tokenizer.VocabSize).ToArray();
        Assert.NotEmpty(ids);
        Assert.Equal(tokenizer.Decode(ids, skipSpecial: true), output);
        Assert.Contains($"{prompt.Length} prompt tokens", error);
    }

    [Fact]
    public async Task SampledGenerateIsReproducibleBySeed()
    {
        string dir = TestModels.Checkpoint(TestModels.Tiny with { VocabSize = 102400 });
        string[] args = ["generate", "--model", dir, "--chat", "hello", "--max-tokens", "10", "--temperature", "1.0", "--top-p", "0.9", "--device", "cpu"];
        string first = (await Tune([.. args, "--seed", "1"])).Out;
        Assert.Equal(first, (await Tune([.. args, "--seed", "1"])).Out);
        Assert.NotEqual(first, (await Tune([.. args, "--seed", "2"])).Out);
    }

    [Theory]
    [InlineData("forward --model {dir} --ids 1,x --out /dev/null", "--ids: \"x\" is not a non-negative integer")]
    [InlineData("forward --model {dir} --ids 1,999999 --out /dev/null", "--ids: 999999 is not below vocab_size")]
    [InlineData("forward --model /nonexistent/model --ids 1 --out /dev/null", "/nonexistent/model")]
    [InlineData("generate --model {dir} --prompt a --chat b", "give exactly one of --prompt, --chat")]
    [InlineData("generate --model {dir} --prompt a --top-p 0", "top_p must be in (0, 1]")]
    [InlineData("new --config nosuch --out /tmp/x", "--config nosuch: no such file, and not a built-in config")]
    [InlineData("forward --model {dir} --ids 1 --out /dev/null --dtype f64", "f64")]
    [InlineData("convert --out /tmp/x.gguf", "--model is required (or --adapter DIR")]
    [InlineData("convert --adapter /nonexistent/adapter --out /tmp/x.gguf", "--adapter /nonexistent/adapter: adapter_config.json is missing")]
    public async Task BadInputGetsAnErrorThatNamesIt(string command, string message)
    {
        string dir = TestModels.Checkpoint(TestModels.Tiny);
        var (exit, _, error) = await Tune(command.Replace("{dir}", dir).Split(' '));
        Assert.NotEqual(0, exit);
        Assert.Contains(message, error);
        Assert.DoesNotContain("   at ", error);
    }

    [Fact]
    public async Task ConvertAdapterWritesAGgufLoraAdapter()
    {
        string model = TestModels.Checkpoint(TestModels.Tiny);
        string adapter = NewDirectory(), gguf = Path.Combine(TestModels.Root, $"cli-adapter-{Guid.NewGuid():N}.gguf");
        var lora = new LoraConfig { Rank = 2, TargetModules = ["o_proj", "up_proj"] };
        using (var checkpoint = CheckpointDirectory.Open(model))
        using (var m = DeepSeekV2ForCausalLM.Load(checkpoint, TorchRuntime.Cpu))
        {
            LoraInjection.Attach(m, lora, seed: 1);
            PeftAdapter.Save(m, lora, adapter, model);
        }
        var (exit, output, error) = await Tune("convert", "--adapter", adapter, "--out", gguf, "--type", "f16");
        Assert.True(exit == 0, error);
        Assert.Contains("GGUF LoRA adapter", output);
        using var file = GgufFile.Open(gguf);
        Assert.Equal("adapter", file.Get<string>("general.type"));
        Assert.Equal(GgmlType.F16, file.Tensor("blk.1.ffn_up_exps.weight.lora_a").Type);

        (exit, output, _) = await Tune("convert", "--help");
        Assert.Equal(0, exit);
        Assert.Contains("--adapter", output);
    }

    [Fact]
    public async Task HelpTeachesEachVerb()
    {
        var (exit, output, _) = await Tune("--help");
        Assert.Equal(0, exit);
        foreach (string verb in new[] { "new", "forward", "generate", "inspect" }) Assert.Contains(verb, output);
        (exit, output, _) = await Tune("generate", "--help");
        Assert.Equal(0, exit);
        Assert.Contains("--fim-prefix", output);
        Assert.Contains("--device", output);
        Assert.Contains("--dtype", output);
    }
}
