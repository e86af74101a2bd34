using System.Diagnostics;
using TorchSharp;
using Tune.Formats;
using Tune.Model;
using static TorchSharp.torch;

namespace Tune.Bench;

/// <summary>Prefill of a random prompt and greedy-free decode steps with the latent cache, after one warm-up pass.</summary>
internal static class InferenceBenchmark
{
    public static string Run(string modelDirectory, TorchRuntime runtime, int prefill, int decode)
    {
        using var checkpoint = CheckpointDirectory.Open(modelDirectory);
        var clock = Stopwatch.StartNew();
        using var lm = DeepSeekV2ForCausalLM.Load(checkpoint, runtime);
        double loadSeconds = clock.Elapsed.TotalSeconds;
        var random = new Random(1);
        long[] prompt = Enumerable.Range(0, prefill).Select(_ => (long)random.Next(100000)).ToArray();
        using var noGrad = no_grad();

        double Prefill(LatentCache cache)
        {
            using var scope = NewDisposeScope();
            var watch = Stopwatch.StartNew();
            lm.Forward(tensor(prompt).unsqueeze(0), cache);
            return watch.Elapsed.TotalSeconds;
        }
        double Decode(LatentCache cache)
        {
            var watch = Stopwatch.StartNew();
            for (int i = 0; i < decode; i++)
            {
                using var scope = NewDisposeScope();
                lm.Forward(tensor(new[] { (long)random.Next(100000) }).unsqueeze(0), cache);
            }
            return watch.Elapsed.TotalSeconds;
        }

        using (var warm = new LatentCache(checkpoint.Config, 1, prefill + decode, runtime)) { Prefill(warm); Decode(warm); }
        using var cache = new LatentCache(checkpoint.Config, 1, prefill + decode, runtime);
        double prefillSeconds = Prefill(cache);
        double decodeSeconds = Decode(cache);
        return $"| infer | {TorchRuntime.Name(runtime.DType)} | {torch.get_num_threads()} | prefill {prefill}: {prefill / prefillSeconds:F1} tok/s | " +
               $"decode: {decode / decodeSeconds:F2} tok/s | peak RSS {PeakMemory.GiB():F2} GiB | load {loadSeconds:F1} s |";
    }
}
