using System.Text;
using System.Text.RegularExpressions;

namespace Tune.Trainer.Data;

/// <summary>
/// A path pattern over '/'-separated paths relative to a source directory: <c>*</c> is any run of characters
/// within a name, <c>?</c> one character, <c>**</c> any number of whole directories. A pattern without '/' matches
/// a name at any depth (<c>*.py</c> is every Python file, <c>node_modules</c> every such directory), as in
/// .gitignore; one with '/' matches from the source directory (<c>src/**/*.rs</c>).
/// </summary>
internal sealed class Glob
{
    private readonly Regex _regex;

    public Glob(string pattern)
    {
        if (string.IsNullOrWhiteSpace(pattern)) throw new FormatException("empty glob pattern");
        Pattern = pattern;
        // A trailing '/' ("build/") says "directory", which pruning handles the same way as a name.
        string trimmed = pattern.TrimEnd('/');
        string rooted = trimmed.Contains('/') ? trimmed.TrimStart('/') : "**/" + trimmed;
        _regex = new Regex("^" + Translate(rooted) + "$", RegexOptions.CultureInvariant);
    }

    public string Pattern { get; }

    public bool Matches(string relativePath) => _regex.IsMatch(relativePath);

    private static string Translate(string pattern)
    {
        var regex = new StringBuilder();
        for (int i = 0; i < pattern.Length; i++)
        {
            char c = pattern[i];
            if (c == '*' && i + 1 < pattern.Length && pattern[i + 1] == '*')
            {
                bool wholeSegment = (i == 0 || pattern[i - 1] == '/') && (i + 2 == pattern.Length || pattern[i + 2] == '/');
                if (!wholeSegment) throw new FormatException($"'**' must be a whole path segment in \"{pattern}\"");
                if (i + 2 == pattern.Length)
                {
                    // "dir/**" is everything below dir; a trailing "/" before it is already in the regex.
                    regex.Append(".*");
                    i++;
                }
                else
                {
                    regex.Append("(?:[^/]+/)*");
                    i += 2;
                }
            }
            else if (c == '*') regex.Append("[^/]*");
            else if (c == '?') regex.Append("[^/]");
            else regex.Append(Regex.Escape(c.ToString()));
        }
        return regex.ToString();
    }
}
