using System.Diagnostics;
using System.Text.Json;
using Tune.Formats;
using Tune.Quantize;
using Xunit.Abstractions;

namespace Tune.Tests.Quantize;

/// <summary>
/// llama.cpp loads every file `tune quantize` writes and its next-token distribution stays close to the f32 model's:
/// mean KL(p_f32 ‖ p_quantised) over ~200 tokens of text the model never saw (oracle/kl.mjs). The model is
/// <see cref="QuantizeModels.Shaped"/> with random weights, so the figures say how much quantisation moves a
/// distribution, not how a trained model degrades. Random weights are chaotic (errors compound over nine layers: measured mean KL 0.032 for q8_0, ≈0.9 for the k-quant
/// mixtures, 1.1 for q4_0, see docs/benchmarks.md); the bounds are about twice that.
/// </summary>
public sealed class LlamaCppKlTests(ITestOutputHelper output)
{
    public const string HeldOutText =
        "The scheduler keeps a queue of pending requests and a fixed number of slots. When a slot frees up, the oldest " +
        "request whose prompt fits in the remaining cache is admitted; its prompt is evaluated in one batch and the " +
        "first token is sampled.\n\ndef merge_sorted(a, b):\n    out = []\n    i = j = 0\n    while i < len(a) and j < len(b):\n" +
        "        if a[i] <= b[j]:\n            out.append(a[i]); i += 1\n        else:\n            out.append(b[j]); j += 1\n" +
        "    return out + a[i:] + b[j:]\n\nEach decoding step then appends one token per active slot, so latency stays " +
        "flat while throughput grows with the number of concurrent users, until the cache is full.";

    private static readonly Dictionary<string, double> MeanKlBound = new()
    {
        ["q8_0"] = 0.1,
        ["q4_0"] = 2.5,
        ["q4_k_s"] = 2.0,
        ["q4_k_m"] = 2.0,
    };

    private sealed record KlResult(string Model, double Mean_kl, double Max_kl, double Top1_agreement);

    private sealed record KlRun(int Tokens, KlResult[] Results);

    [Fact]
    public void QuantisedFilesStayCloseToF32InLlamaCpp()
    {
        string reference = QuantizeModels.Gguf(GgmlType.F32);
        string dir = Convert.ConvertModels.NewDirectory("kl");
        var files = QuantizationMix.All.ToDictionary(m => m.Name, m =>
        {
            string path = Path.Combine(dir, $"{m.Name}.gguf");
            using var q = GgufQuantization.Prepare(new QuantizeOptions(reference, path, m) { Threads = 2 });
            q.Write();
            return path;
        });
        KlRun run = Run(reference, files.Values.ToArray(), dir);
        Assert.InRange(run.Tokens, 150, 400);
        foreach (var (mix, path) in files)
        {
            KlResult r = run.Results.Single(x => x.Model == path);
            output.WriteLine($"{mix}: mean KL {r.Mean_kl:E3}, max KL {r.Max_kl:E3}, top-1 agreement {r.Top1_agreement:P1} over {run.Tokens} tokens");
        }
        foreach (var (mix, path) in files)
        {
            KlResult r = run.Results.Single(x => x.Model == path);
            Assert.True(r.Mean_kl < MeanKlBound[mix], $"{mix}: mean KL {r.Mean_kl} is not below {MeanKlBound[mix]}");
        }
        // More bits, less divergence (the inputs and llama.cpp's evaluation are deterministic, so the order is stable).
        double Kl(string mix) => run.Results.Single(x => x.Model == files[mix]).Mean_kl;
        Assert.True(Kl("q8_0") * 10 < Kl("q4_k_m"), "q8_0 diverges far less than q4_k_m");
        Assert.True(Kl("q4_k_m") < Kl("q4_0") && Kl("q4_k_s") < Kl("q4_0"), "the k-quant mixtures diverge less than q4_0");
    }

    private static KlRun Run(string reference, string[] candidates, string dir)
    {
        string job = Path.Combine(dir, "kl-job.json");
        File.WriteAllText(job, JsonSerializer.Serialize(new { reference, candidates, text = HeldOutText }));
        var start = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = RepoPaths.Root };
        start.ArgumentList.Add(Path.Combine(RepoPaths.Root, "oracle", "kl.mjs"));
        start.ArgumentList.Add(job);
        using Process node = Process.Start(start) ?? throw new InvalidOperationException("cannot start node");
        Task<string> stderr = node.StandardError.ReadToEndAsync();
        string stdout = node.StandardOutput.ReadToEnd();
        node.WaitForExit();
        if (node.ExitCode != 0) Assert.Fail($"oracle/kl.mjs exited with {node.ExitCode} (run oracle/setup.sh?):\n{stderr.Result}");
        return JsonSerializer.Deserialize<KlRun>(stdout, new JsonSerializerOptions { PropertyNameCaseInsensitive = true })!;
    }
}
