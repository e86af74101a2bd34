using TorchSharp;
using Tune.Formats;
using Tune.Model;
using static TorchSharp.torch;

namespace Tune.Tests.Model;

/// <summary>
/// Decode steps of several sequences in one forward pass, each row in its own cache at its own length, against each
/// sequence decoded alone; and last-position logits against the full forward.
/// </summary>
[Collection("torch")]
public sealed class BatchedDecodingTests
{
    private static readonly long[][] Prompts = [[0, 17, 250, 3, 99, 411, 2], [0, 58], [0, 300, 17, 5, 8, 44, 90, 12, 101, 7, 3, 66], [0, 5, 9]];

    private static float[] Values(Tensor t) => t.contiguous().data<float>().ToArray();

    /// <summary>Logits [rows][step][vocab] of greedy-free decoding: step s feeds token s of <paramref name="fed"/>.</summary>
    private static float[][][] Decode(DeepSeekV2ForCausalLM model, long[][] fed, bool batched)
    {
        using var noGrad = no_grad();
        var caches = Prompts.Select(p => new LatentCache(model.Config, 1, 32, TorchRuntime.Cpu)).ToArray();
        try
        {
            for (int r = 0; r < Prompts.Length; r++)
                using (NewDisposeScope()) model.Forward(tensor(Prompts[r]).unsqueeze(0), caches[r], lastPositionOnly: true);
            var logits = Prompts.Select(_ => new float[fed[0].Length][]).ToArray();
            for (int step = 0; step < fed[0].Length; step++)
            {
                using var scope = NewDisposeScope();
                if (batched)
                {
                    Tensor rows = model.Forward(tensor(fed.Select(f => f[step]).ToArray()).unsqueeze(1), caches);
                    for (int r = 0; r < Prompts.Length; r++) logits[r][step] = Values(rows[r, 0]);
                }
                else
                    for (int r = 0; r < Prompts.Length; r++)
                        logits[r][step] = Values(model.Forward(tensor(new[] { fed[r][step] }).unsqueeze(0), caches[r])[0, 0]);
            }
            for (int r = 0; r < Prompts.Length; r++) Assert.Equal(Prompts[r].Length + fed[r].Length, caches[r].Length);
            return logits;
        }
        finally
        {
            foreach (LatentCache cache in caches) cache.Dispose();
        }
    }

    [Fact]
    public void RowsDecodedTogetherGiveTheLogitsOfEachDecodedAlone()
    {
        long[][] fed = [[5, 6, 7, 8, 9], [300, 2, 2, 41, 17], [1, 99, 98, 97, 96], [411, 410, 5, 5, 5]];
        foreach (DeepSeekV2Config config in new[] { TestModels.Tiny, TestModels.Tiny with { QLoraRank = 12, RopeScaling = null } })
        {
            using var checkpoint = CheckpointDirectory.Open(TestModels.Checkpoint(config));
            using var model = DeepSeekV2ForCausalLM.Load(checkpoint, TorchRuntime.Cpu);
            float[][][] alone = Decode(model, fed, batched: false), together = Decode(model, fed, batched: true);
            for (int r = 0; r < Prompts.Length; r++)
                for (int step = 0; step < fed[r].Length; step++)
                {
                    double diff = alone[r][step].Zip(together[r][step], (a, b) => (double)Math.Abs(a - b)).Max();
                    Assert.True(diff < 1e-5, $"row {r} (prompt of {Prompts[r].Length}), step {step}: max |alone - together| = {diff}");
                }
        }
    }

    /// <summary>
    /// Quantised weights, attn_k_b/attn_v_b included (the absorbed products per head): every row's activations are
    /// rounded and multiplied on their own, so batching changes nothing (measured: identical logits).
    /// </summary>
    [Fact]
    public void QuantisedRowsDecodedTogetherGiveTheLogitsOfEachDecodedAlone()
    {
        string gguf = Tune.Tests.Gguf.GgufModels.Quantise(Tune.Tests.Gguf.GgufModels.Calm, Tune.Quantize.QuantizationMix.Parse("q8_0"));
        using var loaded = Tune.Serve.Gguf.GgufModel.Load(gguf, TorchRuntime.Cpu, threads: 2);
        long[][] fed = [[5, 6, 7], [300, 2, 2], [1, 99, 98], [411, 410, 5]];
        float[][][] alone = Decode(loaded.Model, fed, batched: false), together = Decode(loaded.Model, fed, batched: true);
        double worst = 0;
        for (int r = 0; r < Prompts.Length; r++)
            for (int step = 0; step < fed[r].Length; step++)
                worst = Math.Max(worst, alone[r][step].Zip(together[r][step], (a, b) => (double)Math.Abs(a - b)).Max());
        Assert.True(worst < 1e-5, $"max |alone - together| = {worst}");
    }

    [Fact]
    public void LastPositionLogitsAreTheFullForwardsLastRow()
    {
        using var checkpoint = CheckpointDirectory.Open(TestModels.Checkpoint(TestModels.Tiny));
        using var model = DeepSeekV2ForCausalLM.Load(checkpoint, TorchRuntime.Cpu);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        Tensor ids = stack([tensor(Prompts[0]), tensor(Prompts[0].Reverse().ToArray())]);
        Tensor full = model.Forward(ids);
        Tensor last = model.Forward(ids, lastPositionOnly: true);
        Assert.Equal([2, 1, TestModels.Tiny.VocabSize], last.shape);
        double diff = Values(full.narrow(1, Prompts[0].Length - 1, 1)).Zip(Values(last), (x, y) => (double)Math.Abs(x - y)).Max();
        Assert.True(diff < 1e-5, $"max |full - last| = {diff}");
    }

    /// <summary>The engine retries a failed batch slot by slot, which needs every cache left as it was.</summary>
    [Fact]
    public void AFailedPassLeavesEveryCacheWhereItWas()
    {
        using var checkpoint = CheckpointDirectory.Open(TestModels.Checkpoint(TestModels.Tiny));
        using var model = DeepSeekV2ForCausalLM.Load(checkpoint, TorchRuntime.Cpu);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using var open = new LatentCache(TestModels.Tiny, 1, 8, TorchRuntime.Cpu);
        using var full = new LatentCache(TestModels.Tiny, 1, 1, TorchRuntime.Cpu);
        using var fresh = new LatentCache(TestModels.Tiny, 1, 8, TorchRuntime.Cpu);
        model.Forward(tensor(Prompts[3]).unsqueeze(0), open);
        model.Forward(tensor(Prompts[3]).unsqueeze(0), fresh);
        model.Forward(tensor(new long[] { 7 }).unsqueeze(0), full);

        Assert.Throws<InvalidOperationException>(() => model.Forward(tensor(new long[] { 3, 4 }).unsqueeze(1), [open, full]));
        Assert.Equal((Prompts[3].Length, 1), (open.Length, full.Length));
        Tensor next = tensor(new long[] { 3 }).unsqueeze(0);
        Assert.Equal(Values(model.Forward(next, fresh)), Values(model.Forward(next, open)));
    }

    [Fact]
    public void CachesMustMatchTheRows()
    {
        using var checkpoint = CheckpointDirectory.Open(TestModels.Checkpoint(TestModels.Tiny));
        using var model = DeepSeekV2ForCausalLM.Load(checkpoint, TorchRuntime.Cpu);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using var a = new LatentCache(TestModels.Tiny, 1, 8, TorchRuntime.Cpu);
        using var b = new LatentCache(TestModels.Tiny, 1, 8, TorchRuntime.Cpu);
        Tensor two = tensor(new long[] { 3, 4 }).unsqueeze(1);
        Assert.Throws<ArgumentException>(() => model.Forward(two, [a]));
        Assert.Throws<ArgumentException>(() => model.Forward(two, [a, a]));
        model.Forward(two, [a, b]);
        Assert.Equal((1, 1), (a.Length, b.Length));
    }
}
