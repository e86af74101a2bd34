using System.Diagnostics;
using TorchSharp;
using Tune.Formats;
using Tune.Model;
using static TorchSharp.torch;

namespace Tune.Bench;

/// <summary>
/// LoRA training steps (forward, backward, no optimiser) on one random row: r = 16 on the attention projections and on
/// the dense, shared and routed experts' MLPs. Reports tokens/s, peak memory, and the share of forward time spent in
/// the routed experts (RoutedExperts.ComputeTime; backward cannot be split this way).
/// </summary>
internal static class TrainingStepBenchmark
{
    public static string Run(string modelDirectory, TorchRuntime runtime, int sequence, int steps, bool checkpointing)
    {
        using var checkpoint = CheckpointDirectory.Open(modelDirectory);
        using var lm = DeepSeekV2ForCausalLM.Load(checkpoint, runtime);
        var lora = new LoraConfig { Rank = 16, Alpha = 32, TargetModules = [.. LoraConfig.AttentionModules, .. LoraConfig.MlpModules] };
        LoraInjection.Attach(lm, lora, seed: 1);
        lm.train();
        var random = new Random(1);
        long[] ids = Enumerable.Range(0, sequence + 1).Select(_ => (long)random.Next(100000)).ToArray();

        double Step()
        {
            using var scope = NewDisposeScope();
            var watch = Stopwatch.StartNew();
            Tensor logits = lm.Forward(tensor(ids[..^1]).unsqueeze(0), checkpointLayers: checkpointing);
            Tensor loss = nn.functional.cross_entropy(logits.view(-1, logits.shape[2]), tensor(ids[1..]));
            loss.backward();
            return watch.Elapsed.TotalSeconds;
        }

        Step();
        RoutedExperts[] experts = lm.Layers.Where(l => l.Moe is not null).Select(l => l.Moe!.Experts).ToArray();
        foreach (RoutedExperts e in experts) e.ResetComputeTime();
        double total = 0;
        for (int i = 0; i < steps; i++) total += Step();
        double forward = experts.Sum(e => e.ComputeTime.TotalSeconds);
        return $"| train | {TorchRuntime.Name(runtime.DType)} | {torch.get_num_threads()} | seq {sequence} | checkpointing {(checkpointing ? "on" : "off")} | " +
               $"{sequence * steps / total:F1} tok/s | {total / steps:F2} s/step | routed experts {100 * forward / total:F0}% of step time (forward only) | " +
               $"peak RSS {PeakMemory.GiB():F2} GiB |";
    }
}
