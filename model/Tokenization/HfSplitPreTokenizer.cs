using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using Tune.Formats;

namespace Tune.Model.Tokenization;

/// <summary>
/// Hugging Face's <c>Sequence[Split(behavior: Isolated), ...]</c>: each regex re-splits every piece produced so far,
/// keeping both the matches and the text between them. The package's CompositePreTokenizer gets both wrong: its gap
/// offsets overlap (duplicated digit runs, 43 of llama.cpp's 46 vectors) and it never re-splits a match, whereas
/// <c>Äpfel</c> must become <c>Ä</c> | <c>pfel</c> because the third regex rescans the second one's letter run.
/// </summary>
public sealed class HfSplitPreTokenizer : PreTokenizer
{
    private readonly Regex[] _splits;

    /// <summary>Compiles the file's Split regexes; a regex that cannot be translated exactly is an error naming the file and path.</summary>
    public HfSplitPreTokenizer(IReadOnlyList<SplitRegex> splits, string source)
    {
        _splits = new Regex[splits.Count];
        for (int i = 0; i < splits.Count; i++)
        {
            try { _splits[i] = HfRegex.Compile(splits[i].Pattern); }
            catch (Exception e) when (e is NotSupportedException or ArgumentException)
            {
                throw new FormatException($"{source}: {splits[i].JsonPath}: cannot use the regex: {e.Message}", e);
            }
        }
    }

    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) => Split(text.AsSpan());

    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) => Split(text);

    private List<(int Offset, int Length)> Split(ReadOnlySpan<char> text)
    {
        var pieces = new List<(int Offset, int Length)>();
        if (text.IsEmpty) return pieces;
        pieces.Add((0, text.Length));
        var next = new List<(int Offset, int Length)>();
        foreach (Regex regex in _splits)
        {
            next.Clear();
            foreach (var (offset, length) in pieces)
            {
                // Matching inside the slice makes \z and \s? see the piece's own ends, as Hugging Face's per-piece split does.
                ReadOnlySpan<char> piece = text.Slice(offset, length);
                int at = 0;
                foreach (ValueMatch match in regex.EnumerateMatches(piece))
                {
                    if (match.Length == 0) continue;
                    if (match.Index > at) next.Add((offset + at, match.Index - at));
                    next.Add((offset + match.Index, match.Length));
                    at = match.Index + match.Length;
                }
                if (at < length) next.Add((offset + at, length - at));
            }
            (pieces, next) = (next, pieces);
        }
        return pieces;
    }
}
