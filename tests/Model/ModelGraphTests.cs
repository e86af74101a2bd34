using TorchSharp;
using Tune.Formats;
using Tune.Model;
using static TorchSharp.torch;

namespace Tune.Tests.Model;

[Collection("torch")]
public sealed class ModelGraphTests
{
    private static readonly long[] Ids = [0, 17, 250, 3, 99, 411, 2, 58, 300, 17, 5];

    private static (CheckpointDirectory Checkpoint, DeepSeekV2ForCausalLM Model) Load(DeepSeekV2Config config, TorchRuntime? runtime = null)
    {
        var checkpoint = CheckpointDirectory.Open(TestModels.Checkpoint(config));
        return (checkpoint, DeepSeekV2ForCausalLM.Load(checkpoint, runtime ?? TorchRuntime.Cpu));
    }

    private static float[,] Logits(DeepSeekV2ForCausalLM model, long[] ids, LatentCache? cache = null)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        Tensor logits = model.Forward(tensor(ids).unsqueeze(0), cache)[0];
        var result = new float[ids.Length, logits.shape[1]];
        float[] flat = logits.data<float>().ToArray();
        Buffer.BlockCopy(flat, 0, result, 0, flat.Length * sizeof(float));
        return result;
    }

    private static double MaxAbsDiff(float[,] a, float[,] b, int rowOffsetInA = 0)
    {
        double max = 0;
        for (int r = 0; r < b.GetLength(0); r++)
            for (int c = 0; c < b.GetLength(1); c++)
                max = Math.Max(max, Math.Abs(a[r + rowOffsetInA, c] - b[r, c]));
        return max;
    }

    [Fact]
    public void ParameterNamesAreTheCheckpointsTensorNames()
    {
        foreach (DeepSeekV2Config config in new[] { TestModels.Tiny, TestModels.Tiny with { QLoraRank = 12, TieWordEmbeddings = true } })
        {
            (CheckpointDirectory checkpoint, DeepSeekV2ForCausalLM model) = Load(config);
            using (checkpoint)
            using (model)
            {
                string[] expected = CheckpointLayout.Tensors(config).Select(t => t.Name).Order().ToArray();
                string[] actual = model.named_parameters().Select(p => p.name).Order().ToArray();
                Assert.Equal(expected, actual);
                // Each module once, under its checkpoint name (no C# field names such as _attention).
                string[] modules = model.named_modules().Select(m => m.name).ToArray();
                Assert.Equal(modules.Length, modules.Distinct().Count());
                Assert.DoesNotContain(modules, m => m.Contains('_') && m.Split('.').Any(part => part.StartsWith('_')));
            }
        }
    }

    [Fact]
    public void AbsorbedAttentionWithCacheGivesTheTrainingFormsLogits()
    {
        foreach (DeepSeekV2Config config in new[] { TestModels.Tiny, TestModels.Tiny with { QLoraRank = 12, RopeScaling = null } })
        {
            (CheckpointDirectory checkpoint, DeepSeekV2ForCausalLM model) = Load(config);
            using (checkpoint)
            using (model)
            {
                float[,] naive = Logits(model, Ids);
                using var cache = new LatentCache(config, 1, 32, TorchRuntime.Cpu);
                float[,] absorbed = Logits(model, Ids, cache);
                Assert.Equal(Ids.Length, cache.Length);
                Assert.True(MaxAbsDiff(naive, absorbed) < 1e-5, $"max |naive - absorbed| = {MaxAbsDiff(naive, absorbed)}");
            }
        }
    }

    [Fact]
    public void IncrementalDecodingEqualsTheFullForwardAtEveryPosition()
    {
        (CheckpointDirectory checkpoint, DeepSeekV2ForCausalLM model) = Load(TestModels.Tiny);
        using (checkpoint)
        using (model)
        {
            float[,] full = Logits(model, Ids);
            using var cache = new LatentCache(TestModels.Tiny, 1, Ids.Length, TorchRuntime.Cpu);
            float[,] prefill = Logits(model, Ids[..4], cache);
            Assert.True(MaxAbsDiff(full, prefill) < 1e-5);
            for (int pos = 4; pos < Ids.Length; pos++)
            {
                float[,] step = Logits(model, [Ids[pos]], cache);
                double diff = MaxAbsDiff(full, step, rowOffsetInA: pos);
                Assert.True(diff < 1e-5, $"position {pos}: max |full - incremental| = {diff}");
            }
            Assert.Throws<InvalidOperationException>(() => Logits(model, [5], cache));
        }
    }

    [Fact]
    public void SequencesOfABatchDoNotSeeEachOther()
    {
        (CheckpointDirectory checkpoint, DeepSeekV2ForCausalLM model) = Load(TestModels.Tiny);
        using (checkpoint)
        using (model)
        using (no_grad())
        using (NewDisposeScope())
        {
            long[] other = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
            Tensor batch = model.Forward(stack([tensor(Ids), tensor(other)]));
            Tensor first = model.Forward(tensor(Ids).unsqueeze(0))[0];
            Tensor second = model.Forward(tensor(other).unsqueeze(0))[0];
            Assert.True((batch[0] - first).abs().max().item<float>() < 1e-5);
            Assert.True((batch[1] - second).abs().max().item<float>() < 1e-5);
        }
    }

    [Fact]
    public void LogitsAtAPositionDependOnlyOnEarlierTokens()
    {
        (CheckpointDirectory checkpoint, DeepSeekV2ForCausalLM model) = Load(TestModels.Tiny);
        using (checkpoint)
        using (model)
        {
            float[,] a = Logits(model, Ids);
            long[] changed = (long[])Ids.Clone();
            changed[6] = 123;
            float[,] b = Logits(model, changed);
            double before = 0, after = 0;
            for (int c = 0; c < a.GetLength(1); c++)
            {
                for (int r = 0; r < 6; r++) before = Math.Max(before, Math.Abs(a[r, c] - b[r, c]));
                after = Math.Max(after, Math.Abs(a[6, c] - b[6, c]));
            }
            Assert.True(before < 1e-5, $"earlier positions moved by {before}");
            Assert.True(after > 1e-3, $"the changed position moved by only {after}");
        }
    }

    [Fact]
    public void Bf16RunIsCloseToF32()
    {
        var bf16 = new TorchRuntime(CPU, ScalarType.BFloat16);
        (CheckpointDirectory checkpoint, DeepSeekV2ForCausalLM f32Model) = Load(TestModels.Tiny);
        using (checkpoint)
        using (f32Model)
        using (DeepSeekV2ForCausalLM bf16Model = DeepSeekV2ForCausalLM.Load(checkpoint, bf16))
        {
            float[,] exact = Logits(f32Model, Ids);
            float[,] rounded = Logits(bf16Model, Ids);
            double scale = 0;
            foreach (float v in exact) scale = Math.Max(scale, Math.Abs(v));
            double diff = MaxAbsDiff(exact, rounded);
            Assert.True(diff < 0.1 * scale, $"bf16 differs by {diff} on logits of magnitude {scale}");
            Assert.True(diff > 0, "bf16 must actually compute in bf16");
        }
    }
}
