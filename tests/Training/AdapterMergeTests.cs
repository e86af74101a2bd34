using TorchSharp;
using Tune.Formats;
using Tune.Model;
using Tune.Tests.Model;
using Tune.Trainer;
using static TorchSharp.torch;

namespace Tune.Tests.Training;

[Collection("torch")]
public sealed class AdapterMergeTests
{
    private static readonly long[] Ids = [0, 17, 250, 3, 99, 411, 2, 58, 300, 17];

    private static float[] Logits(DeepSeekV2ForCausalLM model)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        return model.Forward(tensor(Ids).unsqueeze(0)).data<float>().ToArray();
    }

    [Fact]
    public void MergedCheckpointComputesTheBasePlusAdapter()
    {
        string baseDir = TestModels.Checkpoint(TestModels.Tiny, shards: 2);
        string adapter = Path.Combine(TestModels.Root, $"merge-adapter-{Guid.NewGuid():N}");
        string merged = Path.Combine(TestModels.Root, $"merged-{Guid.NewGuid():N}");
        var lora = new LoraConfig { Rank = 4, Alpha = 8, UseRsLora = true, TargetModules = [.. LoraConfig.AttentionModules, .. LoraConfig.MlpModules] };
        float[] expected;
        using (var checkpoint = CheckpointDirectory.Open(baseDir))
        using (var model = DeepSeekV2ForCausalLM.Load(checkpoint, TorchRuntime.Cpu))
        {
            LoraInjection.Attach(model, lora, seed: 1);
            var generator = new Generator(2);
            using (no_grad())
                foreach ((_, Projection p) in LoraInjection.Projections(model).Where(p => p.Projection.HasLora))
                    p.LoraB!.copy_(randn(p.LoraB.shape, generator: generator) * 0.05);
            expected = Logits(model);
            using var baseModel = DeepSeekV2ForCausalLM.Load(checkpoint, TorchRuntime.Cpu);
            float[] plain = Logits(baseModel);
            Assert.True(expected.Zip(plain, (a, b) => Math.Abs(a - b)).Max() > 1e-2, "the adapter must change the logits");
            PeftAdapter.Save(model, lora, adapter, baseDir);
        }

        IReadOnlyList<string> files = AdapterMerge.Write(baseDir, adapter, merged);
        Assert.Equal(3, files.Count);   // two shards and the index, as the base
        using var mergedCheckpoint = CheckpointDirectory.Open(merged);
        using var mergedModel = DeepSeekV2ForCausalLM.Load(mergedCheckpoint, TorchRuntime.Cpu);
        float[] actual = Logits(mergedModel);
        double diff = expected.Zip(actual, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(diff < 1e-5, $"max |base+adapter - merged| = {diff}");
        Assert.True(File.Exists(Path.Combine(merged, "tokenizer.json")));

        using var baseCheckpoint = CheckpointDirectory.Open(baseDir);
        Assert.Equal(baseCheckpoint.ReadFloat32("model.norm.weight"), mergedCheckpoint.ReadFloat32("model.norm.weight"));
        Assert.NotEqual(baseCheckpoint.ReadFloat32("model.layers.1.mlp.experts.2.up_proj.weight"),
            mergedCheckpoint.ReadFloat32("model.layers.1.mlp.experts.2.up_proj.weight"));
    }

    [Fact]
    public void AnAdapterForAnotherModelIsRefusedAndNothingIsWritten()
    {
        string adapter = Path.Combine(TestModels.Root, $"foreign-adapter-{Guid.NewGuid():N}");
        string output = Path.Combine(TestModels.Root, $"merged-{Guid.NewGuid():N}");
        var lora = new LoraConfig { Rank = 2, TargetModules = ["q_a_proj"] };
        using (var checkpoint = CheckpointDirectory.Open(TestModels.Checkpoint(TestModels.Tiny with { QLoraRank = 12 })))
        using (var model = DeepSeekV2ForCausalLM.Load(checkpoint, TorchRuntime.Cpu))
        {
            LoraInjection.Attach(model, lora, seed: 3);
            PeftAdapter.Save(model, lora, adapter, "q-lora model");
        }
        var error = Assert.Throws<InvalidDataException>(() => AdapterMerge.Write(TestModels.Checkpoint(TestModels.Tiny), adapter, output));
        Assert.Contains("q_a_proj", error.Message);
        Assert.False(Directory.Exists(output) && Directory.EnumerateFiles(output).Any());
    }
}
