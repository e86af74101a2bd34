using System.Diagnostics;
using TorchSharp;
using Tune.Formats;
using Tune.Model;
using Tune.Serve.Gguf;
using static TorchSharp.torch;

namespace Tune.Bench;

/// <summary>Prefill of a random prompt and greedy-free decode steps with the latent cache, after one warm-up pass.</summary>
internal static class InferenceBenchmark
{
    /// <summary>An HF checkpoint directory, loaded into libtorch tensors of <paramref name="runtime"/>'s dtype.</summary>
    public static string Run(string modelDirectory, TorchRuntime runtime, int prefill, int decode, int repeat)
    {
        using var checkpoint = CheckpointDirectory.Open(modelDirectory);
        var clock = Stopwatch.StartNew();
        using var lm = DeepSeekV2ForCausalLM.Load(checkpoint, runtime);
        double loadSeconds = clock.Elapsed.TotalSeconds;
        return Measure(lm, TorchRuntime.Name(runtime.DType), prefill, decode, repeat, loadSeconds);
    }

    /// <summary>
    /// A GGUF file through the server's loader: quantised weights stay in block format and multiply with
    /// <paramref name="threads"/> threads of the codecs' Dot, the rest of the graph runs in libtorch.
    /// </summary>
    public static string RunGguf(string path, TorchRuntime runtime, int threads, int prefill, int decode, int repeat)
    {
        var clock = Stopwatch.StartNew();
        using var gguf = GgufModel.Load(path, runtime, threads);
        double loadSeconds = clock.Elapsed.TotalSeconds;
        return Measure(gguf.Model, $"gguf {Path.GetFileName(path)}", prefill, decode, repeat, loadSeconds);
    }

    // Each round fills a fresh cache; the best round is reported because the build machine is shared and a
    // competing job can only make a round slower, never faster.
    private static string Measure(DeepSeekV2ForCausalLM lm, string label, int prefill, int decode, int repeat, double loadSeconds)
    {
        var random = new Random(1);
        long[] prompt = Enumerable.Range(0, prefill).Select(_ => (long)random.Next(100000)).ToArray();
        using var noGrad = no_grad();

        double Prefill(LatentCache cache)
        {
            using var scope = NewDisposeScope();
            var watch = Stopwatch.StartNew();
            lm.Forward(tensor(prompt).unsqueeze(0), cache, lastPositionOnly: true);
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

        using (var warm = new LatentCache(lm.Config, 1, prefill + decode, lm.Runtime)) { Prefill(warm); Decode(warm); }
        var prefillRounds = new List<double>();
        var decodeRounds = new List<double>();
        for (int r = 0; r < Math.Max(1, repeat); r++)
        {
            using var cache = new LatentCache(lm.Config, 1, prefill + decode, lm.Runtime);
            prefillRounds.Add(prefill / Prefill(cache));
            decodeRounds.Add(decode / Decode(cache));
        }
        string Rounds(List<double> rates, string format) => rates.Count == 1 ? "" : $" (rounds {string.Join(", ", rates.Select(v => v.ToString(format)))})";
        return $"| infer | {label} | {torch.get_num_threads()} | prefill {prefill}: {prefillRounds.Max():F1} tok/s{Rounds(prefillRounds, "F1")} | " +
               $"decode: {decodeRounds.Max():F2} tok/s{Rounds(decodeRounds, "F2")} | peak RSS {PeakMemory.GiB():F2} GiB | load {loadSeconds:F1} s |";
    }
}
