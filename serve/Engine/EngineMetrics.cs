namespace Tune.Serve.Engine;

/// <summary>Running totals the engine's worker adds to and /metrics reads; all updates are atomic.</summary>
public sealed class EngineMetrics
{
    private long _requests, _promptTokens, _cachedPromptTokens, _predictedTokens, _promptTicks, _decodeTicks, _decodePasses, _decodedRows;

    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Prompt tokens the model computed (cached ones not counted).</summary>
    public long PromptTokens => Interlocked.Read(ref _promptTokens);

    public long CachedPromptTokens => Interlocked.Read(ref _cachedPromptTokens);
    public long PredictedTokens => Interlocked.Read(ref _predictedTokens);
    public TimeSpan PromptTime => TimeSpan.FromTicks(Interlocked.Read(ref _promptTicks));
    public TimeSpan DecodeTime => TimeSpan.FromTicks(Interlocked.Read(ref _decodeTicks));

    /// <summary>Batched decode forward passes; <see cref="DecodedRows"/> / passes is the mean batch size.</summary>
    public long DecodePasses => Interlocked.Read(ref _decodePasses);

    /// <summary>Tokens decoded by those passes, one per slot in each.</summary>
    public long DecodedRows => Interlocked.Read(ref _decodedRows);

    internal void Add(GenerationSummary s)
    {
        Interlocked.Increment(ref _requests);
        Interlocked.Add(ref _promptTokens, s.ComputedPromptTokens);
        Interlocked.Add(ref _cachedPromptTokens, s.CachedPromptTokens);
        Interlocked.Add(ref _predictedTokens, s.Tokens.Count);
        Interlocked.Add(ref _promptTicks, s.PromptTime.Ticks);
        Interlocked.Add(ref _decodeTicks, s.DecodeTime.Ticks);
    }

    internal void AddDecodePass(int rows)
    {
        Interlocked.Increment(ref _decodePasses);
        Interlocked.Add(ref _decodedRows, rows);
    }
}
