using Tune.Model;
using Tune.Model.Tokenization;
using Tune.Serve;
using Tune.Serve.Engine;

namespace Tune.Tests.Serve;

/// <summary>
/// The engine on its own: concurrent requests share batched decode passes, and each still gets what it would get
/// alone, with its own adapter, stop string, token limit, context limit and cancellation.
/// </summary>
[Collection("torch")]
public sealed class BatchedEngineTests
{
    private const int Context = 64;

    private sealed record Outcome(string Text, GenerationSummary Summary);

    private static async Task<Outcome> Collect(GenerationRequest request, Action<string>? onText = null)
    {
        string text = "";
        await foreach (GenerationEvent e in request.Events.ReadAllAsync())
            switch (e)
            {
                case TextDelta d:
                    text += d.Text;
                    onText?.Invoke(text);
                    break;
                case GenerationDone d: return new Outcome(text, d.Summary);
                case GenerationFailed f: throw new InvalidOperationException(f.Message);
            }
        throw new InvalidOperationException("the request ended without a summary");
    }

    private static int[] Prompt(string prefix) => FimPrompt.Build(ServeModels.Tokenizer, prefix, "\n").Ids;

    private static GenerationRequest Request(int[] prompt, int maxTokens, string? adapter = null, IReadOnlyList<string>? stops = null,
        CancellationToken cancel = default) =>
        new() { Prompt = prompt, MaxTokens = maxTokens, Adapter = adapter, Stops = stops ?? [], Sampling = new SamplingOptions(), Cancel = cancel };

    [Fact]
    public async Task ConcurrentRequestsDecodedTogetherEachSayWhatTheySayAlone()
    {
        using ServedModel served = ServedModel.Load(ServerClient.Options(), TorchRuntime.Cpu);
        using var engine = new InferenceEngine(served, slots: 6, Context, maxQueued: 0);
        int[] a = Prompt("def a():\n    "), b = Prompt("class B:\n    pass\n\nclass C(B):\n    "), c = Prompt("for i in range(3):\n    "),
            d = Prompt("import sys\n"), e = Prompt("x = ["), f = Prompt("while True:\n    ");
        string stopSource = ServeModels.ColdRun(d, 12);
        string stop = stopSource.Trim().Length >= 4 ? stopSource.Trim()[2..4] : throw new InvalidOperationException($"cold run too short: '{stopSource}'");

        using var cancel = new CancellationTokenSource();
        var requests = new[]
        {
            Request(a, 12), Request(b, 5), Request(c, 12, adapter: "styled"), Request(d, 12, stops: [stop]), Request(e, 1000),
            Request(f, 1000, cancel: cancel.Token),
        };
        foreach (GenerationRequest request in requests) Assert.True(engine.TrySubmit(request));
        Task<Outcome>[] outcomes = requests
            .Select((r, i) => Collect(r, i == 5 ? text => { if (text.Length > 0) cancel.Cancel(); } : null)).ToArray();
        Outcome[] got = await Task.WhenAll(outcomes).WaitAsync(TimeSpan.FromMinutes(2));

        Assert.Equal(ServeModels.ColdRun(a, 12), got[0].Text);
        Assert.Equal(ServeModels.ColdRun(b, 5), got[1].Text);
        Assert.Equal(ServeModels.ColdRun(c, 12, ServeModels.Adapter), got[2].Text);
        Assert.Equal(FinishReason.StopString, got[3].Summary.Reason);
        Assert.Equal(stopSource[..stopSource.IndexOf(stop, StringComparison.Ordinal)], got[3].Text);
        // The context, not max tokens, ends this one; its cold run produces as many tokens as the context leaves.
        Assert.Equal(ServeModels.ColdRun(e, Context - e.Length), got[4].Text);
        if (got[4].Summary.Reason == FinishReason.Length) Assert.Equal(Context - e.Length, got[4].Summary.Tokens.Count);
        Assert.Equal(FinishReason.Cancelled, got[5].Summary.Reason);
        Assert.StartsWith(got[5].Text, ServeModels.ColdRun(f, Context - f.Length));

        // A round decodes all slots of an adapter in one pass; stepped one by one, passes would equal rows.
        Assert.True(engine.Metrics.DecodePasses < engine.Metrics.DecodedRows,
            $"{engine.Metrics.DecodedRows} rows in {engine.Metrics.DecodePasses} decode passes");
    }
}
