using TorchSharp;
using Tune.Formats;
using Tune.Model;
using static TorchSharp.torch;

namespace Tune.Tests.Model;

[Collection("torch")]
public sealed class LoraTests
{
    private static readonly long[] Ids = [0, 17, 250, 3, 99, 411, 2, 58, 300, 17];

    private static readonly LoraConfig Everything = new()
    {
        Rank = 4,
        Alpha = 8,
        TargetModules = [.. LoraConfig.AttentionModules, .. LoraConfig.MlpModules],
    };

    private static float[] Logits(DeepSeekV2ForCausalLM model, LatentCache? cache = null)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        return model.Forward(tensor(Ids).unsqueeze(0), cache).data<float>().ToArray();
    }

    private static double MaxDiff(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max();

    /// <summary>Gives every B random values so the adapters change the output and A receives gradient too.</summary>
    private static void Randomise(DeepSeekV2ForCausalLM model, long seed)
    {
        var generator = new Generator((ulong)seed);
        using var noGrad = no_grad();
        foreach ((_, Projection p) in LoraInjection.Projections(model).Where(p => p.Projection.HasLora))
            p.LoraB!.copy_(randn(p.LoraB.shape, generator: generator) * 0.3);
    }

    private static (CheckpointDirectory, DeepSeekV2ForCausalLM) Load(DeepSeekV2Config config)
    {
        var checkpoint = CheckpointDirectory.Open(TestModels.Checkpoint(config));
        return (checkpoint, DeepSeekV2ForCausalLM.Load(checkpoint, TorchRuntime.Cpu));
    }

    [Fact]
    public void AFreshAdapterLeavesTheLogitsUnchanged()
    {
        (CheckpointDirectory checkpoint, DeepSeekV2ForCausalLM model) = Load(TestModels.Tiny);
        using (checkpoint)
        using (model)
        {
            float[] before = Logits(model);
            IReadOnlyList<string> adapted = LoraInjection.Attach(model, Everything, seed: 1);
            // 3 layers: q, kv_a, kv_b, o each; dense MLP in layer 0; 2 MoE layers × (shared + 8 experts) × 3.
            Assert.Equal(3 * 4 + 3 + 2 * 9 * 3, adapted.Count);
            Assert.True(MaxDiff(before, Logits(model)) < 1e-6, "a zero B must leave the logits as they were");
        }
    }

    [Fact]
    public void TargetsSelectAttentionDenseSharedAndChosenExperts()
    {
        var config = Everything with { Dense = false, SharedExperts = false, RoutedExperts = new Dictionary<int, IReadOnlyList<int>> { [2] = [5] } };
        Assert.True(config.Targets("model.layers.0.self_attn.q_proj"));
        Assert.False(config.Targets("model.layers.0.mlp.gate_proj"));
        Assert.False(config.Targets("model.layers.1.mlp.shared_experts.up_proj"));
        Assert.False(config.Targets("model.layers.1.mlp.experts.5.up_proj"));
        Assert.True(config.Targets("model.layers.2.mlp.experts.5.down_proj"));
        Assert.False(config.Targets("model.layers.2.mlp.experts.4.down_proj"));
        Assert.False(config.Targets("lm_head"));
        Assert.False((Everything with { TargetModules = ["o_proj"] }).Targets("model.layers.0.self_attn.q_proj"));
    }

    [Fact]
    public void AbsorbedAttentionSeesTheKvBAdapter()
    {
        (CheckpointDirectory checkpoint, DeepSeekV2ForCausalLM model) = Load(TestModels.Tiny);
        using (checkpoint)
        using (model)
        {
            LoraInjection.Attach(model, Everything with { TargetModules = ["kv_b_proj", "q_proj"] }, seed: 2);
            Randomise(model, 3);
            float[] naive = Logits(model);
            using var cache = new LatentCache(TestModels.Tiny, 1, Ids.Length, TorchRuntime.Cpu);
            Assert.True(MaxDiff(naive, Logits(model, cache)) < 1e-5);
        }
    }

    [Fact]
    public void GradientsMatchFiniteDifferences()
    {
        (CheckpointDirectory checkpoint, DeepSeekV2ForCausalLM model) = Load(TestModels.Tiny);
        using (checkpoint)
        using (model)
        {
            LoraInjection.Attach(model, Everything, seed: 4);
            Randomise(model, 5);
            var weights = randn([1, Ids.Length, TestModels.Tiny.VocabSize], generator: new Generator(6));
            double Loss()
            {
                using var scope = NewDisposeScope();
                return (model.Forward(tensor(Ids).unsqueeze(0)) * weights).sum().item<float>();
            }
            using (NewDisposeScope()) (model.Forward(tensor(Ids).unsqueeze(0)) * weights).sum().backward();

            var probes = LoraInjection.Projections(model).Where(p => p.Projection.HasLora)
                .Where(p => p.Name.EndsWith("self_attn.kv_b_proj") || p.Name.EndsWith("mlp.down_proj") || p.Name.EndsWith("shared_experts.up_proj"))
                .SelectMany(p => new[] { p.Projection.LoraA!, p.Projection.LoraB! }).ToList();
            Assert.NotEmpty(probes);
            foreach (var parameter in probes)
            {
                float[] grad = parameter.grad!.data<float>().ToArray();
                int index = Array.IndexOf(grad, grad.MaxBy(Math.Abs));
                const float eps = 1e-2f;
                using var noGrad = no_grad();
                Tensor flat = parameter.view(-1);
                float original = flat[index].item<float>();
                flat[index] = original + eps;
                double plus = Loss();
                flat[index] = original - eps;
                double minus = Loss();
                flat[index] = original;
                double numeric = (plus - minus) / (2 * eps);
                Assert.True(Math.Abs(numeric - grad[index]) <= 0.02 * Math.Abs(grad[index]) + 1e-3,
                    $"analytic {grad[index]} vs numeric {numeric}");
            }
        }
    }

    [Fact]
    public void ExpertAdaptersTrainOnlyOnTheirTokens()
    {
        (CheckpointDirectory checkpoint, DeepSeekV2ForCausalLM model) = Load(TestModels.Tiny);
        using (checkpoint)
        using (model)
        {
            LoraInjection.Attach(model, Everything with { TargetModules = ["up_proj"] }, seed: 7);
            Randomise(model, 8);
            long[] one = [42];
            using (NewDisposeScope()) model.Forward(tensor(one).unsqueeze(0)).sum().backward();
            var experts = LoraInjection.Projections(model)
                .Where(p => p.Name.StartsWith("model.layers.1.mlp.experts.") && p.Projection.HasLora).ToList();
            Assert.Equal(TestModels.Tiny.NRoutedExperts, experts.Count);
            int withGrad = experts.Count(e => e.Projection.LoraB!.grad is { } g && g.abs().sum().item<float>() > 0);
            // One token is routed to exactly num_experts_per_tok experts of the layer.
            Assert.Equal(TestModels.Tiny.NumExpertsPerTok, withGrad);
        }
    }

    [Fact]
    public async Task ASavedAdapterLoadsIntoAFreshModelAndIntoTuneForward()
    {
        DeepSeekV2Config config = TestModels.Tiny;
        string adapter = Path.Combine(TestModels.Root, $"adapter-{Guid.NewGuid():N}");
        var selection = Everything with { RoutedExperts = new Dictionary<int, IReadOnlyList<int>> { [1] = [0, 3], [2] = [7] } };
        float[] trained;
        (CheckpointDirectory checkpoint, DeepSeekV2ForCausalLM model) = Load(config);
        using (checkpoint)
        using (model)
        {
            LoraInjection.Attach(model, selection, seed: 9);
            Randomise(model, 10);
            trained = Logits(model);
            PeftAdapter.Save(model, selection, adapter, "tiny");
        }
        (checkpoint, model) = Load(config);
        using (checkpoint)
        using (model)
        {
            float[] baseLogits = Logits(model);
            LoraConfig loaded = PeftAdapter.Apply(model, adapter);
            Assert.Equal(selection.Rank, loaded.Rank);
            Assert.Equal(selection.Scale, loaded.Scale);
            Assert.True(MaxDiff(trained, Logits(model)) < 1e-6, "the reloaded adapter must give the trained logits");
            Assert.True(MaxDiff(trained, baseLogits) > 1e-3);
        }
        string output = Path.Combine(TestModels.Root, $"adapter-logits-{Guid.NewGuid():N}.bin");
        int exit = await Tune.Cli.Program.Run(["forward", "--model", TestModels.Checkpoint(config), "--adapter", adapter,
            "--ids", string.Join(",", Ids), "--out", output, "--device", "cpu"], new StringWriter(), new StringWriter());
        Assert.Equal(0, exit);
        byte[] bytes = File.ReadAllBytes(output);
        float[] fromCli = new float[bytes.Length / sizeof(float)];
        Buffer.BlockCopy(bytes, 0, fromCli, 0, bytes.Length);
        Assert.True(MaxDiff(trained, fromCli) < 1e-6, "tune forward --adapter must give the trained logits");

        using var file = SafetensorsFile.Open(Path.Combine(adapter, PeftAdapter.WeightsFile));
        Assert.Contains(file.Tensors, t => t.Name == "base_model.model.model.layers.1.mlp.experts.3.gate_proj.lora_B.weight");
        Assert.DoesNotContain(file.Tensors, t => t.Name.Contains("mlp.experts.1."));
        string json = File.ReadAllText(Path.Combine(adapter, PeftAdapter.ConfigFile));
        Assert.Contains("\"peft_type\": \"LORA\"", json);
        Assert.Contains("model\\\\.layers\\\\.2\\\\.mlp\\\\.experts\\\\.7\\\\.up_proj", json);
    }

    [Fact]
    public void GradientCheckpointingGivesTheSameLossAndGradients()
    {
        (CheckpointDirectory checkpoint, DeepSeekV2ForCausalLM model) = Load(TestModels.Tiny);
        using (checkpoint)
        using (model)
        {
            LoraInjection.Attach(model, Everything with { Dropout = 0.1 }, seed: 11);
            Randomise(model, 12);
            model.train();
            var parameters = model.parameters().Where(p => p.requires_grad).ToList();
            var weights = randn([1, Ids.Length, TestModels.Tiny.VocabSize], generator: new Generator(13));
            (float Loss, float[][] Grads) Step(bool checkpointed)
            {
                foreach (var p in parameters) p.grad?.zero_();
                manual_seed(14);
                using var scope = NewDisposeScope();
                var aux = new List<Tensor>();
                Tensor loss = (model.Forward(tensor(Ids).unsqueeze(0), auxLosses: aux, checkpointLayers: checkpointed) * weights).sum()
                              + stack(aux).sum() * 10;
                loss.backward();
                return (loss.item<float>(), parameters.Select(p => p.grad?.data<float>().ToArray() ?? new float[p.numel()]).ToArray());
            }
            (float plainLoss, float[][] plain) = Step(checkpointed: false);
            (float checkpointedLoss, float[][] recomputed) = Step(checkpointed: true);
            Assert.Equal(plainLoss, checkpointedLoss, 3);
            double diff = plain.Zip(recomputed, (a, b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max()).Max();
            double scale = plain.Max(g => g.Max(Math.Abs));
            Assert.True(diff <= 1e-4 * scale, $"max gradient difference {diff} (gradients up to {scale})");
        }
    }
}
