using TorchSharp;
using Tune.Convert;
using Tune.Formats;
using Tune.Model;
using Tune.Model.Tokenization;
using Tune.Tests.Tokenization;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Tune.Tests.Convert;

/// <summary>
/// Every file `tune convert` writes, loaded and run by llama.cpp: its next-token distribution at every position of a
/// prompt against Tune's own forward pass on the source checkpoint. Converted once for the whole class; llama.cpp
/// runs all files in one process.
/// </summary>
public sealed class LlamaCppInterop : IDisposable
{
    /// <summary>A file to check: the checkpoint (config, stored dtype) it is converted from, the output type and layout.</summary>
    public sealed record Case(string Name, DeepSeekV2Config Config, GgmlType Type, KvLayout Layout = KvLayout.Split, DType Source = DType.F32);

    /// <summary>How llama.cpp's distributions compare with Tune's over all positions.</summary>
    public sealed record Agreement(int Positions, int SameTop1, double MaxDp, double MaxDLogit, double MaxP);

    public const string Text = "def add(a, b):\n    return a + b\n";

    /// <summary>Long enough that the two group rules disagree on some candidate tokens (they rarely do on peaked routers).</summary>
    public const int GroupPromptLength = 32;

    public static readonly Case[] Cases =
    [
        new("base f32", ConvertModels.Base, GgmlType.F32),
        new("base f16", ConvertModels.Base, GgmlType.F16),
        new("base bf16", ConvertModels.Base, GgmlType.BF16),
        new("base q8_0", ConvertModels.Base, GgmlType.Q8_0),
        // From a checkpoint that already holds bf16 values: what is left is llama.cpp's bf16 arithmetic.
        new("base bf16 from bf16", ConvertModels.Base, GgmlType.BF16, Source: DType.BF16),
        new("base legacy f32", ConvertModels.Base, GgmlType.F32, KvLayout.Legacy),
        new("q_lora + norm_topk_prob f32", ConvertModels.QLora, GgmlType.F32),
        new("group_limited_greedy f32", ConvertModels.GroupLimited, GgmlType.F32),
        new("no YaRN, 27 layers f32", ConvertModels.NoYarn27, GgmlType.F32),
        new("no shared expert, tied, mscale != mscale_all_dim f32", ConvertModels.Quirks, GgmlType.F32),
    ];

    public LlamaCppInterop()
    {
        DeepSeekTokenizer tokenizer = DeepSeekTokenizer.Load(RepoPaths.Tokenizers);
        TextPrompt = [tokenizer.BosId, .. tokenizer.EncodeText(Text)];
        var prompts = new Dictionary<DeepSeekV2Config, int[]>();
        var tune = new Dictionary<(DeepSeekV2Config, DType), float[][]>();
        var jobs = new List<LlamaCppLogits.Job>();
        foreach (Case c in Cases)
        {
            string checkpoint = ConvertModels.Checkpoint(c.Config, c.Source);
            if (!tune.ContainsKey((c.Config, c.Source)))
            {
                using var source = CheckpointDirectory.Open(checkpoint);
                using var model = DeepSeekV2ForCausalLM.Load(source, TorchRuntime.Cpu);
                if (!prompts.ContainsKey(c.Config))
                {
                    int[] prompt = TextPrompt;
                    if (c.Config.TopkMethod == "group_limited_greedy")
                    {
                        prompt = GroupRuleProbe.AgreeingPrompt(model, tokenizer.BosId, GroupPromptLength, 100000, seed: 5, out int rejected);
                        GroupPromptRejected = rejected;
                    }
                    prompts[c.Config] = prompt;
                }
                tune[(c.Config, c.Source)] = Forward(model, prompts[c.Config]);
            }
            string file = c.Name.Replace(' ', '-').Replace(",", "").Replace("!=", "ne").Replace("+", "and") + ".gguf";
            string gguf = ConvertModels.Convert(checkpoint, file, c.Type, c.Layout);
            Files[c.Name] = gguf;
            jobs.Add(new LlamaCppLogits.Job(gguf, prompts[c.Config]));
        }
        float[][][] llama = LlamaCppLogits.Evaluate(jobs, ConvertModels.Base.VocabSize);
        for (int i = 0; i < Cases.Length; i++) Results[Cases[i].Name] = Compare(tune[(Cases[i].Config, Cases[i].Source)], llama[i]);
    }

    public int[] TextPrompt { get; }
    public int GroupPromptRejected { get; }
    public Dictionary<string, string> Files { get; } = [];
    public Dictionary<string, Agreement> Results { get; } = [];

    public void Dispose()
    {
        foreach (string file in Files.Values) File.Delete(file);
    }

    internal static float[][] Forward(DeepSeekV2ForCausalLM model, int[] prompt)
    {
        using var grad = no_grad();
        using var scope = NewDisposeScope();
        Tensor logits = model.Forward(tensor(prompt.Select(i => (long)i).ToArray()).unsqueeze(0))[0];
        return Enumerable.Range(0, prompt.Length).Select(t => logits[t].data<float>().ToArray()).ToArray();
    }

    internal static Agreement Compare(float[][] tune, float[][] llama)
    {
        int same = 0;
        double maxDp = 0, maxDLogit = 0, maxP = 0;
        for (int t = 0; t < tune.Length; t++)
        {
            double[] p = Softmax(tune[t]), q = Softmax(llama[t]);
            if (ArgMax(tune[t]) == ArgMax(llama[t])) same++;
            for (int v = 0; v < p.Length; v++)
            {
                maxDp = Math.Max(maxDp, Math.Abs(p[v] - q[v]));
                maxDLogit = Math.Max(maxDLogit, Math.Abs(tune[t][v] - llama[t][v]));
                maxP = Math.Max(maxP, p[v]);
            }
        }
        return new Agreement(tune.Length, same, maxDp, maxDLogit, maxP);
    }

    private static int ArgMax(float[] v) => Array.IndexOf(v, v.Max());

    private static double[] Softmax(float[] logits)
    {
        double max = logits.Max();
        double[] e = logits.Select(l => Math.Exp(l - max)).ToArray();
        double sum = e.Sum();
        return e.Select(x => x / sum).ToArray();
    }
}

[Collection("torch")]
public sealed class LlamaCppInteropTests(LlamaCppInterop run, ITestOutputHelper output) : IClassFixture<LlamaCppInterop>
{
    public static TheoryData<string> ExactCases => [.. LlamaCppInterop.Cases.Where(c => c.Type == GgmlType.F32).Select(c => c.Name)];

    private LlamaCppInterop.Agreement Report(string name)
    {
        LlamaCppInterop.Agreement a = run.Results[name];
        output.WriteLine($"{name}: {a.SameTop1}/{a.Positions} same top-1, max |Δp| {a.MaxDp:E2}, max |Δlogit| {a.MaxDLogit:E2} (largest p {a.MaxP:F3})");
        return a;
    }

    [Theory]
    [MemberData(nameof(ExactCases))]
    public void LlamaCppComputesTheHfModelFromAnF32File(string name)
    {
        LlamaCppInterop.Agreement a = Report(name);
        Assert.True(a.MaxP > 0.2, "the test distributions must be peaked, or |Δp| says nothing");
        Assert.Equal(a.Positions, a.SameTop1);
        Assert.True(a.MaxDp <= 1e-3, $"max |Δp| {a.MaxDp:E2} > 1e-3");
    }

    [Theory]
    // Measured on this model (15 positions): f16 15/15, |Δp| 3.3e-3; bf16 12/15, 3.2e-2; q8_0 11/15, 5.5e-2;
    // bf16 weights in both, llama.cpp's bf16 arithmetic alone: 14/15, 1.4e-2. The bounds leave some room.
    [InlineData("base f16", 1.0, 0.01)]
    [InlineData("base bf16", 0.7, 0.1)]
    [InlineData("base q8_0", 0.6, 0.15)]
    [InlineData("base bf16 from bf16", 0.8, 0.05)]
    public void RoundedFilesStayCloseToTheModel(string name, double minSameTop1, double maxDp)
    {
        LlamaCppInterop.Agreement a = Report(name);
        Assert.True(a.SameTop1 >= minSameTop1 * a.Positions, $"{a.SameTop1}/{a.Positions} same top-1");
        Assert.True(a.MaxDp <= maxDp, $"max |Δp| {a.MaxDp:E2} > {maxDp}");
    }

    [Fact]
    public void TheGroupLimitedPromptAvoidsTokensWhereTheTwoGroupRulesDisagree()
    {
        output.WriteLine($"{run.GroupPromptRejected} candidate tokens were routed differently by the two group rules");
        Assert.True(run.GroupPromptRejected > 0, "the two rules never disagreed, so the probe proved nothing");
    }

    [Fact]
    public void LlamaCppTokenisesLikeTuneWithTheConvertedVocabulary()
    {
        DeepSeekTokenizer tokenizer = DeepSeekTokenizer.Load(RepoPaths.Tokenizers);
        string[] texts = [LlamaCppInterop.Text, "Führer ü 日本語 😀 1234567  \n\n x", "<｜fim▁begin｜>a<｜fim▁hole｜>b<｜fim▁end｜>"];
        int[][] llama = LlamaCppOracle.Tokenize(run.Files["base f32"], texts, specialTokens: false);
        for (int i = 0; i < texts.Length; i++) Assert.Equal(tokenizer.EncodeText(texts[i]), llama[i]);
        Assert.Equal(run.TextPrompt[1..], llama[0]);
        int[][] special = LlamaCppOracle.Tokenize(run.Files["base f32"], [texts[2]], specialTokens: true);
        Assert.Equal(tokenizer.EncodeWithAddedTokens(texts[2]), special[0]);
    }
}
