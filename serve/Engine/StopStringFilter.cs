namespace Tune.Serve.Engine;

/// <summary>
/// Cuts generated text at the first stop string. A stop string can arrive split over several tokens, so text that
/// could still turn out to begin one is held back until the next piece decides it.
/// </summary>
public sealed class StopStringFilter(IReadOnlyList<string> stops)
{
    private string _held = "";

    public string? StopWord { get; private set; }

    /// <summary>The text that is certainly output; after a stop string is found, only the text before it.</summary>
    public string Append(string piece)
    {
        if (StopWord is not null) return "";
        string text = _held + piece;
        int cut = -1;
        foreach (string stop in stops)
        {
            int at = text.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut)) (cut, StopWord) = (at, stop);
        }
        if (cut >= 0)
        {
            _held = "";
            return text[..cut];
        }
        int keep = 0;
        foreach (string stop in stops)
            for (int n = Math.Min(stop.Length - 1, text.Length); n > keep; n--)
                if (text.AsSpan(text.Length - n).SequenceEqual(stop.AsSpan(0, n))) { keep = n; break; }
        _held = text[^keep..];
        return text[..^keep];
    }

    /// <summary>The held-back text, at the end of generation (it never became a stop string).</summary>
    public string Flush()
    {
        string rest = StopWord is null ? _held : "";
        _held = "";
        return rest;
    }
}
