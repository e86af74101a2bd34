using TorchSharp;
using Tune.Formats;
using Tune.Model;
using Tune.Tests.Reference;
using static TorchSharp.torch;

namespace Tune.Tests.Model;

/// <summary>
/// The TorchSharp graph against the independent double-precision reference of the spec, on random checkpoints
/// written in the Hugging Face layout: every config knob that Coder-V2-Lite and the 236B models use.
/// </summary>
[Collection("torch")]
public sealed class ReferenceAgreementTests
{
    private const double Tolerance = 1e-4;
    private static readonly int[] Ids = [0, 17, 250, 3, 99, 411, 2, 58, 300, 17];

    public static TheoryData<string> Configs => new(Variants.Keys);

    private static readonly Dictionary<string, DeepSeekV2Config> Variants = new()
    {
        ["lite-like: q_proj, YaRN, greedy, shared experts, dense layer 0"] = TestModels.Tiny,
        ["236B-like: q_lora, group_limited_greedy, scaling 16"] = TestModels.Tiny with
        {
            QLoraRank = 12, TopkMethod = "group_limited_greedy", NGroup = 4, TopkGroup = 2, RoutedScalingFactor = 16,
        },
        ["norm_topk_prob, q_lora, no rope scaling, tied head"] = TestModels.Tiny with
        {
            QLoraRank = 12, NormTopkProb = true, RoutedScalingFactor = 3, RopeScaling = null, TieWordEmbeddings = true,
        },
        ["no shared experts, MoE every 2nd layer from 0, mscale != mscale_all_dim"] = TestModels.Tiny with
        {
            NSharedExperts = 0, FirstKDenseReplace = 0, MoeLayerFreq = 2, NumHiddenLayers = 4, NumExpertsPerTok = 1,
            RopeScaling = new RopeScaling("yarn", 8, 64, 32, 1, 1.0, 0.5),
        },
    };

    private static double MaxDiff(float[] ours, int vocab, double[][] reference)
    {
        double max = 0;
        for (int t = 0; t < reference.Length; t++)
            for (int v = 0; v < vocab; v++)
                max = Math.Max(max, Math.Abs(ours[t * vocab + v] - reference[t][v]));
        return max;
    }

    private static ReferenceDeepSeekV2 Reference(string dir, CheckpointDirectory checkpoint) =>
        new(File.ReadAllText(Path.Combine(dir, "config.json")),
            name => checkpoint.ReadFloat32(name).Select(f => (double)f).ToArray());

    [Theory]
    [MemberData(nameof(Configs))]
    public void LogitsMatchTheReference(string variant)
    {
        DeepSeekV2Config config = Variants[variant];
        string dir = TestModels.Checkpoint(config);
        using var checkpoint = CheckpointDirectory.Open(dir);
        using var model = DeepSeekV2ForCausalLM.Load(checkpoint, TorchRuntime.Cpu);
        float[] ours;
        using (no_grad())
        using (NewDisposeScope())
            ours = model.Forward(tensor(Ids.Select(i => (long)i).ToArray()).unsqueeze(0))[0].data<float>().ToArray();

        ReferenceDeepSeekV2 reference = Reference(dir, checkpoint);
        double[][] expected = reference.Forward(Ids);
        double diff = MaxDiff(ours, config.VocabSize, expected);
        double magnitude = expected.SelectMany(r => r).Max(Math.Abs);
        Assert.True(magnitude > 0.1, $"logits of magnitude {magnitude} make the comparison meaningless");
        Assert.True(diff < Tolerance, $"{variant}: max |tune - reference| = {diff}");
    }

    [Fact]
    public async Task TuneForwardOnAShardedCheckpointMatchesTheReference()
    {
        DeepSeekV2Config config = Variants.Values.ElementAt(1);
        string dir = TestModels.Checkpoint(config, shards: 3);
        string output = Path.Combine(TestModels.Root, $"logits-{Guid.NewGuid():N}.bin");
        var stdout = new StringWriter();
        int exit = await Tune.Cli.Program.Run(
            ["forward", "--model", dir, "--ids", string.Join(",", Ids), "--out", output, "--device", "cpu"],
            stdout, new StringWriter());
        Assert.Equal(0, exit);
        Assert.Equal($"[{Ids.Length}, {config.VocabSize}]", stdout.ToString().Trim());

        byte[] bytes = File.ReadAllBytes(output);
        Assert.Equal(Ids.Length * config.VocabSize * sizeof(float), bytes.Length);
        float[] ours = new float[bytes.Length / sizeof(float)];
        Buffer.BlockCopy(bytes, 0, ours, 0, bytes.Length);
        using var checkpoint = CheckpointDirectory.Open(dir);
        Assert.Equal(3, checkpoint.ShardFiles.Count);
        double diff = MaxDiff(ours, config.VocabSize, Reference(dir, checkpoint).Forward(Ids));
        Assert.True(diff < Tolerance, $"max |tune forward - reference| = {diff}");
    }

    [Fact]
    public void BalanceLossMatchesTheReference()
    {
        DeepSeekV2Config config = TestModels.Tiny;
        string dir = TestModels.Checkpoint(config);
        using var checkpoint = CheckpointDirectory.Open(dir);
        using var model = DeepSeekV2ForCausalLM.Load(checkpoint, TorchRuntime.Cpu);
        double ours;
        using (no_grad())
        using (NewDisposeScope())
        {
            var losses = new List<Tensor>();
            model.Forward(tensor(Ids.Select(i => (long)i).ToArray()).unsqueeze(0), auxLosses: losses);
            Assert.Equal(config.NumHiddenLayers - config.FirstKDenseReplace, losses.Count);
            ours = losses.Sum(l => l.item<float>()) * config.AuxLossAlpha;
        }
        double expected = Reference(dir, checkpoint).AuxLoss(Ids);
        Assert.Equal(expected, ours, 1e-6);
    }
}
