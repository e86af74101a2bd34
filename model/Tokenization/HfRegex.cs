using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Tune.Model.Tokenization;

/// <summary>
/// Rewrites a Hugging Face (Oniguruma) split regex into a .NET regex that matches the same code points.
/// Oniguruma works on code points, .NET on UTF-16 code units, so astral characters (surrogate pairs) need care:
/// a class such as <c>[𐐀-𐑏]</c> is rejected by .NET ("range in reverse order") and <c>\p{N}</c> misses astral
/// digits. Both become alternations over surrogate pairs. Oniguruma's <c>$</c> and llama.cpp's (ECMAScript) agree on
/// every piece without a newline; .NET's <c>$</c> also matches before a final '\n', so it becomes <c>\z</c>.
/// Constructs whose translation is not exact are refused rather than approximated.
/// </summary>
internal static class HfRegex
{
    private const int FirstAstral = 0x10000;

    public static Regex Compile(string pattern) =>
        new(Translate(pattern), RegexOptions.CultureInvariant | RegexOptions.Compiled);

    public static string Translate(string pattern)
    {
        var net = new StringBuilder(pattern.Length * 2);
        int i = 0;
        while (i < pattern.Length)
        {
            char c = pattern[i];
            if (c == '\\')
            {
                if (i + 1 == pattern.Length) throw new NotSupportedException("the pattern ends in a lone backslash");
                if (TryReadProperty(pattern, i, out string? name, out bool negated, out int next))
                {
                    if (negated) throw new NotSupportedException($"\\P{{{name}}} cannot be translated exactly for astral characters");
                    var astral = AstralRanges(name);
                    net.Append(astral.Count == 0 ? $@"\p{{{name}}}" : $@"(?:\p{{{name}}}|{SurrogateAlternation(astral)})");
                    i = next;
                    continue;
                }
                net.Append(pattern, i, 2);
                i += 2;
            }
            else if (c == '[')
            {
                i = TranslateClass(pattern, i, net);
            }
            else if (c == '$')
            {
                net.Append(@"\z");
                i++;
            }
            else if (char.IsHighSurrogate(c) && i + 1 < pattern.Length && char.IsLowSurrogate(pattern[i + 1]))
            {
                // One code point: a quantifier after it must repeat the pair, not only the low surrogate.
                net.Append("(?:").Append(pattern, i, 2).Append(')');
                i += 2;
            }
            else
            {
                net.Append(c);
                i++;
            }
        }
        return net.ToString();
    }

    /// <summary>Translates the class starting at <paramref name="start"/> ('['); returns the index after its ']'.</summary>
    private static int TranslateClass(string pattern, int start, StringBuilder net)
    {
        int i = start + 1;
        bool negated = i < pattern.Length && pattern[i] == '^';
        if (negated) i++;

        var bmp = new StringBuilder();
        var astral = new List<(int Lo, int Hi)>();
        bool first = true;
        while (true)
        {
            if (i >= pattern.Length) throw new NotSupportedException($"unterminated character class at {start}");
            char c = pattern[i];
            if (c == ']' && !first) break;
            if (c == '[') throw new NotSupportedException($"nested character class at {i} (Oniguruma nests sets, .NET does not)");
            first = false;

            if (c == '\\' && TryReadProperty(pattern, i, out string? name, out bool negatedProperty, out int afterProperty))
            {
                if (negatedProperty || negated)
                    throw new NotSupportedException($"a negated property inside a class or a property in a negated class at {i}");
                bmp.Append(pattern, i, afterProperty - i);
                astral.AddRange(AstralRanges(name));
                i = afterProperty;
                continue;
            }

            var (lo, loText, afterLo) = ReadClassAtom(pattern, i);
            if (lo is null)
            {
                // A shorthand such as \s or \d: .NET knows it; the DeepSeek classes use none with astral members.
                bmp.Append(loText);
                i = afterLo;
                continue;
            }
            int hi = lo.Value;
            i = afterLo;
            if (i + 1 < pattern.Length && pattern[i] == '-' && pattern[i + 1] != ']')
            {
                var (end, _, afterHi) = ReadClassAtom(pattern, i + 1);
                if (end is null) throw new NotSupportedException($"a range ends in a shorthand class at {i + 1}");
                if (end.Value < lo.Value) throw new NotSupportedException($"range in reverse order at {i}");
                hi = end.Value;
                i = afterHi;
            }
            AddRange(lo.Value, hi, bmp, astral);
        }
        i++;

        if (astral.Count == 0)
        {
            net.Append('[').Append(negated ? "^" : "").Append(bmp).Append(']');
            return i;
        }
        if (negated) throw new NotSupportedException($"a negated class with astral members at {start}");
        net.Append("(?:");
        if (bmp.Length > 0) net.Append('[').Append(bmp).Append("]|");
        net.Append(SurrogateAlternation(astral)).Append(')');
        return i;
    }

    /// <summary>Adds a code point range; surrogate code units are left out, they never stand alone in valid text.</summary>
    private static void AddRange(int lo, int hi, StringBuilder bmp, List<(int, int)> astral)
    {
        void Bmp(int a, int b)
        {
            if (a > b) return;
            bmp.Append(Escape(a));
            if (b > a) bmp.Append('-').Append(Escape(b));
        }

        Bmp(lo, Math.Min(hi, 0xD7FF));
        Bmp(Math.Max(lo, 0xE000), Math.Min(hi, 0xFFFF));
        if (hi >= FirstAstral) astral.Add((Math.Max(lo, FirstAstral), hi));
    }

    /// <summary>Reads one class member: its code point when it is a single character, and its regex text.</summary>
    private static (int? CodePoint, string Text, int Next) ReadClassAtom(string pattern, int i)
    {
        char c = pattern[i];
        if (char.IsHighSurrogate(c) && i + 1 < pattern.Length && char.IsLowSurrogate(pattern[i + 1]))
            return (char.ConvertToUtf32(c, pattern[i + 1]), pattern.Substring(i, 2), i + 2);
        if (c != '\\') return (c, c.ToString(), i + 1);
        if (i + 1 == pattern.Length) throw new NotSupportedException("the pattern ends in a lone backslash");

        char e = pattern[i + 1];
        int? simple = e switch
        {
            'n' => '\n', 'r' => '\r', 't' => '\t', 'f' => '\f', 'v' => '\v', 'a' => '\a', 'e' => '\u001B',
            _ when !char.IsAsciiLetterOrDigit(e) => e,
            _ => null,
        };
        if (simple is not null) return (simple, pattern.Substring(i, 2), i + 2);
        if (e is 'u' or 'x')
        {
            int digits = e == 'u' ? 4 : 2;
            if (i + 2 + digits <= pattern.Length
                && int.TryParse(pattern.AsSpan(i + 2, digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int cp))
                return (cp, pattern.Substring(i, 2 + digits), i + 2 + digits);
            throw new NotSupportedException($"escape \\{e} at {i} is not \\{e} with {digits} hex digits");
        }
        if (e is 's' or 'S' or 'd' or 'D' or 'w' or 'W') return (null, pattern.Substring(i, 2), i + 2);
        throw new NotSupportedException($"escape \\{e} at {i} inside a class");
    }

    private static bool TryReadProperty(string pattern, int i, out string name, out bool negated, out int next)
    {
        name = "";
        negated = false;
        next = i;
        if (i + 2 >= pattern.Length || pattern[i + 2] != '{' || pattern[i + 1] is not ('p' or 'P')) return false;
        int close = pattern.IndexOf('}', i + 3);
        if (close < 0) throw new NotSupportedException($"unterminated \\p{{ at {i}");
        name = pattern[(i + 3)..close];
        negated = pattern[i + 1] == 'P';
        next = close + 1;
        return true;
    }

    private static string Escape(int codeUnit) => $@"\u{codeUnit:X4}";

    /// <summary>A .NET alternation matching exactly the UTF-16 encodings of the astral code points in the ranges.</summary>
    private static string SurrogateAlternation(IEnumerable<(int Lo, int Hi)> ranges)
    {
        var parts = new List<string>();
        foreach (var (lo, hi) in Merge(ranges))
        {
            char hiLead = (char)(0xD800 + ((hi - FirstAstral) >> 10)), hiTrail = (char)(0xDC00 + ((hi - FirstAstral) & 0x3FF));
            char loLead = (char)(0xD800 + ((lo - FirstAstral) >> 10)), loTrail = (char)(0xDC00 + ((lo - FirstAstral) & 0x3FF));
            if (loLead == hiLead)
            {
                parts.Add($@"{Escape(loLead)}[{Escape(loTrail)}-{Escape(hiTrail)}]");
                continue;
            }
            parts.Add($@"{Escape(loLead)}[{Escape(loTrail)}-\uDFFF]");
            if (hiLead - loLead > 1) parts.Add($@"[{Escape(loLead + 1)}-{Escape(hiLead - 1)}][\uDC00-\uDFFF]");
            parts.Add($@"{Escape(hiLead)}[\uDC00-{Escape(hiTrail)}]");
        }
        return string.Join('|', parts);
    }

    private static List<(int Lo, int Hi)> Merge(IEnumerable<(int Lo, int Hi)> ranges)
    {
        var merged = new List<(int Lo, int Hi)>();
        foreach (var (lo, hi) in ranges.OrderBy(r => r.Lo))
        {
            if (merged.Count > 0 && lo <= merged[^1].Hi + 1) merged[^1] = (merged[^1].Lo, Math.Max(merged[^1].Hi, hi));
            else merged.Add((lo, hi));
        }
        return merged;
    }

    private static readonly Dictionary<string, List<(int, int)>> AstralByProperty = [];

    /// <summary>
    /// The astral code points of a general category (<c>N</c>, <c>Nd</c>, <c>L</c>...) by .NET's Unicode data.
    /// Other property names (blocks) are .NET's own business and cover the BMP only.
    /// </summary>
    private static List<(int, int)> AstralRanges(string property)
    {
        lock (AstralByProperty)
        {
            if (AstralByProperty.TryGetValue(property, out var cached)) return cached;
            var ranges = new List<(int, int)>();
            if (property.Length is 1 or 2 && char.IsAsciiLetterUpper(property[0]))
            {
                int runStart = -1;
                for (int cp = FirstAstral; cp <= 0x110000; cp++)
                {
                    bool member = cp <= 0x10FFFF && Abbreviation(CharUnicodeInfo.GetUnicodeCategory(cp)).StartsWith(property, StringComparison.Ordinal);
                    if (member && runStart < 0) runStart = cp;
                    else if (!member && runStart >= 0) { ranges.Add((runStart, cp - 1)); runStart = -1; }
                }
            }
            AstralByProperty[property] = ranges;
            return ranges;
        }
    }

    private static string Abbreviation(UnicodeCategory category) => category switch
    {
        UnicodeCategory.UppercaseLetter => "Lu",
        UnicodeCategory.LowercaseLetter => "Ll",
        UnicodeCategory.TitlecaseLetter => "Lt",
        UnicodeCategory.ModifierLetter => "Lm",
        UnicodeCategory.OtherLetter => "Lo",
        UnicodeCategory.NonSpacingMark => "Mn",
        UnicodeCategory.SpacingCombiningMark => "Mc",
        UnicodeCategory.EnclosingMark => "Me",
        UnicodeCategory.DecimalDigitNumber => "Nd",
        UnicodeCategory.LetterNumber => "Nl",
        UnicodeCategory.OtherNumber => "No",
        UnicodeCategory.SpaceSeparator => "Zs",
        UnicodeCategory.LineSeparator => "Zl",
        UnicodeCategory.ParagraphSeparator => "Zp",
        UnicodeCategory.Control => "Cc",
        UnicodeCategory.Format => "Cf",
        UnicodeCategory.Surrogate => "Cs",
        UnicodeCategory.PrivateUse => "Co",
        UnicodeCategory.ConnectorPunctuation => "Pc",
        UnicodeCategory.DashPunctuation => "Pd",
        UnicodeCategory.OpenPunctuation => "Ps",
        UnicodeCategory.ClosePunctuation => "Pe",
        UnicodeCategory.InitialQuotePunctuation => "Pi",
        UnicodeCategory.FinalQuotePunctuation => "Pf",
        UnicodeCategory.OtherPunctuation => "Po",
        UnicodeCategory.MathSymbol => "Sm",
        UnicodeCategory.CurrencySymbol => "Sc",
        UnicodeCategory.ModifierSymbol => "Sk",
        UnicodeCategory.OtherSymbol => "So",
        _ => "Cn",
    };
}
