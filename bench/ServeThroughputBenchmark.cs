using System.Diagnostics;
using Tune.Model;
using Tune.Serve;
using Tune.Serve.Engine;

namespace Tune.Bench;

/// <summary>
/// S concurrent streams through the server's <see cref="InferenceEngine"/> (S slots, so the engine batches their
/// decode steps), each generating greedily from its own short prompt: aggregate and per-stream tokens per second.
/// </summary>
internal static class ServeThroughputBenchmark
{
    public static string Run(string model, TorchRuntime runtime, int threads, IReadOnlyList<int> streams, int tokens, int context)
    {
        using var served = ServedModel.Load(new ServeOptions { ModelPath = model, Threads = threads, Context = context }, runtime);
        var rows = new List<string>
        {
            "| streams | tokens | wall (s) | aggregate tok/s | batched decode tok/s | per-stream tok/s (mean) | first token (s, mean / max) | rows per decode pass |",
            "|---|---|---|---|---|---|---|---|",
        };
        // The warm-up, one whole stream, touches the mapped weights and lets tiered compilation reach the graph's
        // code: after a 4-token warm-up one stream decoded at 21 tok/s, after a whole one at 29 (2 threads).
        Measure(served, 1, tokens, context);
        foreach (int s in streams)
        {
            Result r = Measure(served, s, tokens, context);
            rows.Add($"| {s} | {r.Tokens} | {r.Wall:F2} | {r.Tokens / r.Wall:F2} | {r.DecodeRate:F2} | {r.PerStream:F2} | " +
                     $"{r.FirstTokenMean:F2} / {r.FirstTokenMax:F2} | {r.RowsPerPass:F1} |");
        }
        rows.Add($"{Path.GetFileName(model)}, {tokens} tokens per stream, {threads} thread(s), peak RSS {PeakMemory.GiB():F2} GiB");
        return string.Join('\n', rows);
    }

    private sealed record Result(int Tokens, double Wall, double DecodeRate, double PerStream, double FirstTokenMean, double FirstTokenMax,
        double RowsPerPass);

    private static Result Measure(ServedModel served, int streams, int tokens, int context)
    {
        using var engine = new InferenceEngine(served, streams, context, maxQueued: 0);
        var requests = Enumerable.Range(0, streams).Select(i => new GenerationRequest
        {
            // Distinct prompts, so no stream reuses another's cache and every row attends over its own tokens.
            Prompt = [served.Tokenizer.BosId, .. served.Tokenizer.EncodeText($"def function_{i}(values):\n    # step {i * 7 + 3}\n    ")],
            Sampling = new SamplingOptions(),
            MaxTokens = tokens,
        }).ToList();
        var clock = Stopwatch.StartNew();
        foreach (GenerationRequest request in requests)
            if (!engine.TrySubmit(request)) throw new InvalidOperationException("the engine refused a stream");
        var done = requests.Select(async request =>
        {
            await foreach (GenerationEvent e in request.Events.ReadAllAsync())
                switch (e)
                {
                    case GenerationDone d: return (d.Summary, End: clock.Elapsed.TotalSeconds);
                    case GenerationFailed f: throw new InvalidOperationException(f.Message);
                }
            throw new InvalidOperationException("a stream ended without a summary");
        }).ToArray();
        var results = Task.WhenAll(done).GetAwaiter().GetResult();
        double wall = clock.Elapsed.TotalSeconds;
        // A stream's first token comes with its prefill; what follows is decoding, batched once every prefill is done.
        double[] firstToken = results.Select(r => r.End - r.Summary.DecodeTime.TotalSeconds).ToArray();
        int decoded = results.Sum(r => Math.Max(0, r.Summary.Tokens.Count - 1));
        return new Result(results.Sum(r => r.Summary.Tokens.Count), wall, decoded / (wall - firstToken.Max()),
            results.Average(r => r.Summary.Tokens.Count / r.End), firstToken.Average(), firstToken.Max(),
            engine.Metrics.DecodedRows / (double)Math.Max(1, engine.Metrics.DecodePasses));
    }
}
