namespace Tune.Serve.Engine;

/// <summary>Running totals the engine's worker adds to and /metrics reads; all updates are atomic.</summary>
public sealed class EngineMetrics
{
    private long _requests, _promptTokens, _cachedPromptTokens, _predictedTokens, _promptTicks, _decodeTicks;

    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Prompt tokens the model computed (cached ones not counted).</summary>
    public long PromptTokens => Interlocked.Read(ref _promptTokens);

    public long CachedPromptTokens => Interlocked.Read(ref _cachedPromptTokens);
    public long PredictedTokens => Interlocked.Read(ref _predictedTokens);
    public TimeSpan PromptTime => TimeSpan.FromTicks(Interlocked.Read(ref _promptTicks));
    public TimeSpan DecodeTime => TimeSpan.FromTicks(Interlocked.Read(ref _decodeTicks));

    internal void Add(GenerationSummary s)
    {
        Interlocked.Increment(ref _requests);
        Interlocked.Add(ref _promptTokens, s.ComputedPromptTokens);
        Interlocked.Add(ref _cachedPromptTokens, s.CachedPromptTokens);
        Interlocked.Add(ref _predictedTokens, s.Tokens.Count);
        Interlocked.Add(ref _promptTicks, s.PromptTime.Ticks);
        Interlocked.Add(ref _decodeTicks, s.DecodeTime.Ticks);
    }
}
