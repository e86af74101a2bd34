using System.Diagnostics;
using System.Text.Json;
using Tune.Formats;
using Tune.Model;
using Tune.Model.Tokenization;
using Tune.Quantize;
using Tune.Tests.Convert;
using Tune.Trainer;
using Tune.Trainer.Recipes;
using Tune.Trainer.Training;

namespace Tune.Tests.Gguf;

/// <summary>What <see cref="TrainedGgufModels.Trained"/> made, and what training took.</summary>
/// <param name="Tokens">The memorised document as the trainer saw it: BOS, the text's tokens, EOS.</param>
public sealed record TrainedModel(string F32Gguf, int[] Tokens, double LossBefore, double LossAfter, IReadOnlyList<StepMetrics> Steps,
    TimeSpan TrainingTime, TimeSpan TrainingCpu);

/// <summary>
/// A DeepSeek-V2 model that has learned something, for comparisons whose outcome must not hinge on near-ties: a
/// random checkpoint of <see cref="Config"/> taught by `tune train`'s entry point (LoRA on every projection, dense
/// MLP, shared and routed experts included) to recite <see cref="TextPath"/>, folded in by `tune merge`'s, converted
/// to f32 by `tune convert`'s; quantised by <see cref="GgufModels.Quantise(string, QuantizationMix)"/>. Made once per
/// test run.
/// </summary>
public static class TrainedGgufModels
{
    /// <summary>
    /// Every row a whole number of 256-blocks except attn_k_b's (qk_nope_head_dim 128, so q4_k_m takes its q5_0
    /// fallback there): hidden 256, dense ffn 512, experts 256, kv_lora_rank 256, two heads of 128. Layer 0 dense,
    /// layers 1 and 2 MoE with four routed experts (two per token) and a shared one; with three layers q4_k_m gives
    /// layer 2's ffn_down q6_K and the rest of the FFN q4_K. initializer_range 0.05: a final state aligned with a
    /// frozen random lm_head row then beats the best of the other 102399 by about 187σ ≈ 9 logits (measured: the
    /// median margin is 9.3), and the loss cannot fall much below ~0.34, the other rows' summed exp(logit). At 0.1
    /// training goes faster, but the random base dominates what LoRA adds, and q4_k_m's rounding of the base alone
    /// changed 11 of 32 recited tokens.
    /// </summary>
    public static DeepSeekV2Config Config { get; } = ConvertModels.Base with
    {
        HiddenSize = 256,
        IntermediateSize = 512,
        MoeIntermediateSize = 256,
        NumHiddenLayers = 3,
        NumAttentionHeads = 2,
        NumKeyValueHeads = 2,
        NSharedExperts = 1,
        NRoutedExperts = 4,
        NumExpertsPerTok = 2,
        KvLoraRank = 256,
        QkNopeHeadDim = 128,
        QkRopeHeadDim = 64,
        VHeadDim = 128,
        InitializerRange = 0.05,
    };

    /// <summary>A source file of this repository, a couple of hundred tokens of C#.</summary>
    public static string TextPath => Path.Combine(RepoPaths.Root, "trainer", "Recipes", "ModelRecipe.cs");

    private static readonly Lazy<TrainedModel> LazyTrained = new(Train);

    public static TrainedModel Trained => LazyTrained.Value;

    private static TrainedModel Train()
    {
        string checkpoint = ConvertModels.Checkpoint(Config);
        string text = File.ReadAllText(TextPath);
        DeepSeekTokenizer tokenizer = DeepSeekTokenizer.Load(checkpoint);
        int[] tokens = [tokenizer.BosId, .. tokenizer.EncodeText(text), tokenizer.EosId];

        string work = ConvertModels.NewDirectory("trained");
        string data = Path.Combine(work, "text.jsonl");
        File.WriteAllText(data, JsonSerializer.Serialize(new { text }) + "\n");
        string adapter = Path.Combine(work, "adapter");
        // One row holding exactly the document, seen every step. lr 0.015 stalls (loss 3.6 after 60 steps, 0.43 at 0.01).
        Recipe recipe = RecipeLoader.Parse($$"""
            model: {path: {{checkpoint}}, dtype: f32, device: cpu}
            lora: {rank: 16, alpha: 32, dropout: 0.0}
            data:
              train: [{path: {{data}}, kind: text}]
              eval_fraction: 0
              seq_len: {{tokens.Length}}
              fim: {rate: 0}
            optim: {lr: 0.01}
            schedule: {kind: cosine, warmup_steps: 5, min_lr_ratio: 0.1}
            train: {batch_size: 1, max_steps: 60, log_every: 10, eval_every: 0, save_every: 0, keep_last: 1, aux_loss_coef: 0.0, seed: 1}
            output:
              dir: {{adapter}}
            """, "memorise.yaml");
        var clock = Stopwatch.StartNew();
        TimeSpan cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        // Off the test's synchronisation context, which the blocking wait would otherwise hold.
        TrainingResult result = Task.Run(() => TrainingJob.RunAsync(recipe, resume: false, TextWriter.Null)).GetAwaiter().GetResult();
        TimeSpan trainingTime = clock.Elapsed, trainingCpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;

        string merged = Path.Combine(work, "merged");
        AdapterMerge.Write(checkpoint, adapter, merged);
        string f32 = ConvertModels.Convert(merged, $"trained-{Guid.NewGuid():N}-f32.gguf", GgmlType.F32);
        return new TrainedModel(f32, tokens, result.LossBefore, result.LossAfter, result.Steps, trainingTime, trainingCpu);
    }
}
