using Tune.Model;

namespace Tune.Serve.Engine;

/// <summary>
/// One sequence's place in the engine: its latent KV cache and the tokens that cache holds, kept after a request
/// ends so that the next request with the same prompt prefix (an IDE resending the file on every keystroke) starts
/// from there. The tokens belong to the adapter that computed them.
/// </summary>
internal sealed class Slot(int id, LatentCache cache) : IDisposable
{
    private readonly List<int> _tokens = [];
    private volatile int _cachedTokens;

    public int Id { get; } = id;
    public LatentCache Cache { get; } = cache;
    public string? Adapter { get; private set; }
    public ActiveGeneration? Active { get; set; }
    public long LastUsed { get; set; }

    /// <summary>Tokens in the cache, readable from any thread (for /metrics).</summary>
    public int CachedTokens => _cachedTokens;

    /// <summary>How many leading tokens of <paramref name="prompt"/> this slot's cache already holds for the adapter.</summary>
    public int SharedPrefix(int[] prompt, string? adapter)
    {
        if (adapter != Adapter) return 0;
        int n = 0, limit = Math.Min(prompt.Length, _tokens.Count);
        while (n < limit && prompt[n] == _tokens[n]) n++;
        return n;
    }

    /// <summary>Keeps the first <paramref name="length"/> cached tokens for <paramref name="adapter"/>, forgetting the rest.</summary>
    public void KeepPrefix(int length, string? adapter)
    {
        if (adapter != Adapter) length = 0;
        Cache.Truncate(length);
        _tokens.RemoveRange(length, _tokens.Count - length);
        Adapter = adapter;
        _cachedTokens = length;
    }

    /// <summary>Records tokens that a forward pass has just appended to the cache.</summary>
    public void Appended(ReadOnlySpan<int> ids)
    {
        _tokens.AddRange(ids);
        _cachedTokens = _tokens.Count;
    }

    public void Dispose() => Cache.Dispose();
}
