using System.Text;

namespace Tune.Tests.Tokenization;

/// <summary>
/// Text meant to find the places where two tokenizer implementations part: code, scripts with and without the
/// pre-tokenizer's letter class, astral characters, combining marks, whitespace of every kind, digit runs, and
/// seeded random Unicode. Every string is valid UTF-16 (no lone surrogates), since both sides take UTF-8.
/// </summary>
internal static class VariedStrings
{
    public static readonly IReadOnlyList<string> Handwritten =
    [
        // code
        "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
        "public sealed record Point(int X, int Y)\n{\n    public double Length => Math.Sqrt(X * X + Y * Y);\n}\r\n",
        "fn main() {\n\tlet v: Vec<u8> = (0..=255).collect();\n\tprintln!(\"{:?}\", &v[..4]);\n}",
        "const f = async (x) => { await fetch(`/api/${x}?q=1&r=2`); return x?.y ?? 0; };",
        "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"héllo, 世界\")\n}\n",
        "#include <stdio.h>\nint main(void){printf(\"%d\\n\", 0x7fffffff);return 0;}",
        "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%son' ORDER BY id DESC;",
        "<div class=\"x\"><p>Hello&nbsp;world &amp; more</p></div>",
        "for f in *.txt; do echo \"$f\" | tr 'a-z' 'A-Z' >> out.log 2>&1; done",
        "main :: IO ()\nmain = mapM_ print [x * x | x <- [1..10], odd x]",
        "(defun square (x) (* x x)) ; comment",
        "\\begin{equation} e^{i\\pi} + 1 = 0 \\end{equation}",
        "{\"key\": [1, 2.5, -3e10, true, null], \"nested\": {\"a\": \"b\"}}",
        "    indented four\n\tindented tab\n  \t mixed\n",
        "x=1;y=2;z=x+y;print(z)#done",
        "if (a != b && c <= d || !e) { i++; j--; k <<= 2; }",
        "// TODO(someone): fix this\n/* block */ /** doc */",
        "@decorator\nclass Foo(Bar, metaclass=Meta):\n    __slots__ = ('a',)\n",
        "user@example.com https://example.org/path?x=1#frag",
        "I'm sure you'll see they've done it, don't you? It's 'quoted' and \"double\".",
        "Markdown: **bold** _italic_ `code` [link](http://x.y) # Heading\n- item\n1. item",
        // scripts: in the letter class, outside it, and mixed within one word
        "Äpfel", "Führer", "naïve café résumé", "Ǆemal ǅ ǈ ǋ", "ÀÁÂ àáâ ÿ ø ö ú õ ÷ û ý ù þ ü",
        "Ελληνικά γλώσσα ς σ", "Кириллица и русский язык", "Հայերեն", "ქართული", "ᏣᎳᎩ ᏗᏕᎶᏆᏍᏗ",
        "日本語のテキストです。漢字、ひらがな、カタカナ。", "中文文本，包括标点符号！", "한국어 텍스트 입니다",
        "العربية من اليمين", "עברית", "हिन्दी भाषा", "ภาษาไทย", "ភាសាខ្មែរ", "ᠮᠣᠩᠭᠣᠯ",
        "𐐷𐐶𐐺 Deseret", "𐒰𐒱 Osage", "𞤀𞤁 Adlam", "𝐀𝐁𝐂 𝕏 math letters", "mixed𐐀ascii", "éa", " éa", "Ǆa", "aǄ",
        // combining marks and zero-width characters
        "e\u0301 a\u0308 n\u0303", "Z\u0351\u0354\u0300a\u0363\u0346l\u0344g\u033Fo\u0358", "a\u200Bb\u200Cc\u200Dd\uFEFFe",
        "क्षि", "\u0915\u094D\u0937",
        // emoji
        "🦙", "日本語 🦙", "👩‍👩‍👧‍👦 family", "👍🏽👍🏿", "🇩🇪🇯🇵", "❤️‍🔥", "🏳️‍🌈", "a🙂b🙃c", "😀😃😄😁😆😅😂🤣",
        // whitespace
        " ", "  ", "   ", "        ", "\t", "\t\t", " \t ", "\n", "\n\n\n", "\r\n", "\r\n\r\n", "\r", "a\rb", "a\r\nb\nc\r",
        "trailing   ", "   leading", "a  b   c    d", "line  \n  next", "end\n", "tab\there", "\u00A0nbsp\u00A0",
        "\u3000ideographic\u3000", "em\u2003space", "\u2028line sep\u2029para", "nel\u0085x", "\u000B\u000C vt ff",
        "\u001C\u001D\u001E\u001F separators", "a\u0000b",
        // digits and numbers
        "1234567890", "3.14159265358979", "1,000,000", "0x1F 0b1010 1e-9", "٠١٢٣٤٥٦٧٨٩", "१२३", "１２３４５",
        "²³¹ ½ ¾ ⅞", "Ⅻ ⅻ ↂ", "𝟎𝟏𝟐 𝟘𝟙", "𐄇𐄈 aegean", "①②③", "v1.2.3-rc4", "abc123def", "12ab34",
        // punctuation and symbols
        "!!!???...,,,;;;:::", "«quotes» „low“ ‘single’ “double”", "—–-", "…", "¡¿", "§¶†‡•", "€$£¥₹₿", "©®™",
        "（全角）「括弧」【】", "！＂＃＄％＆", "。、・", "←↑→↓⇒∀∃∈∉∑∏√∞≠≤≥",
        // oddities
        "\uFFFD replacement", "\uFFFF nonchar", "\uE000 private", "\U0010FFFD plane 16",
        new string('a', 300), new string(' ', 100), new string('\n', 20), string.Concat(Enumerable.Repeat("ab ", 50)),
        string.Concat(Enumerable.Repeat("日本", 40)), string.Concat(Enumerable.Repeat("🦙", 30)),
        // control-token text: plain text for both sides (llama.cpp parse_special = false)
        "<｜begin▁of▁sentence｜>Hi<｜end▁of▁sentence｜>", "<｜fim▁begin｜>x<｜fim▁hole｜>y<｜fim▁end｜>", "<|EOT|>",
    ];

    /// <summary>Random strings from a fixed seed: runs of characters drawn from blocks, with separators in between.</summary>
    public static IReadOnlyList<string> Random(int count, int seed)
    {
        (int Lo, int Hi)[] blocks =
        [
            (0x20, 0x7E), (0x20, 0x7E), (0x20, 0x7E), (0x09, 0x0D), (0xA0, 0xFF), (0x100, 0x24F), (0x250, 0x2FF),
            (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x530, 0x58F), (0x590, 0x6FF), (0x900, 0x97F),
            (0xE00, 0xE7F), (0x10A0, 0x10FF), (0x13A0, 0x13FF), (0x1E00, 0x1FFF), (0x2000, 0x206F), (0x2070, 0x21FF),
            (0x2460, 0x24FF), (0x2C00, 0x2C5F), (0x3000, 0x30FF), (0x3100, 0x31FF), (0x4E00, 0x9FA5), (0x9FA6, 0x9FFF),
            (0xA640, 0xA69F), (0xAC00, 0xD7A3), (0xFB00, 0xFB4F), (0xFF00, 0xFFEF), (0x10400, 0x1044F),
            (0x104B0, 0x104FF), (0x1D400, 0x1D7FF), (0x1E900, 0x1E95F), (0x1F300, 0x1FAFF), (0x20000, 0x2A6DF),
            (0x0, 0xFFFF), (0x10000, 0x10FFFF),
        ];
        string[] separators = [" ", "  ", "\n", "\t", "", "", "", "\r\n", ", ", ". ", "_", "-", "0", "42"];
        var random = new Random(seed);
        var result = new List<string>(count);
        var text = new StringBuilder();
        for (int n = 0; n < count; n++)
        {
            text.Clear();
            int runs = random.Next(1, 12);
            for (int r = 0; r < runs; r++)
            {
                var (lo, hi) = blocks[random.Next(blocks.Length)];
                int length = random.Next(1, 10);
                for (int k = 0; k < length; k++)
                {
                    int cp = random.Next(lo, hi + 1);
                    if (cp is >= 0xD800 and <= 0xDFFF) cp = 'x';
                    text.Append(char.ConvertFromUtf32(cp));
                }
                text.Append(separators[random.Next(separators.Length)]);
            }
            result.Add(text.ToString());
        }
        return result;
    }

    /// <summary>
    /// This repository's own sources and docs: real code and prose, a few hundred KB. Files over 256 KB
    /// (the vocabulary JSON) are left out: they add seconds, not new kinds of text.
    /// </summary>
    public static IReadOnlyList<(string Path, string Text)> RepositoryFiles()
    {
        string[] extensions = [".cs", ".md", ".json", ".sh", ".mjs", ".csproj", ".props", ".targets", ".yaml"];
        return Directory.EnumerateFiles(RepoPaths.Root, "*", SearchOption.AllDirectories)
            .Where(path => extensions.Contains(Path.GetExtension(path)))
            .Where(path => !path.Split(Path.DirectorySeparatorChar).Any(part => part is "bin" or "obj" or "node_modules" or "llama.cpp" or ".git"))
            .Where(path => !path.EndsWith("package-lock.json", StringComparison.Ordinal) && new FileInfo(path).Length <= 256 * 1024)
            .Order(StringComparer.Ordinal)
            .Select(path => (path, File.ReadAllText(path)))
            // llama.cpp's GGUF vocab pads ids 100015..102399 with "[PAD{id}]" tokens that its tokenizer matches in raw
            // text; Hugging Face's tokenizer has no such tokens. Files that spell them out (the converter's tests) are
            // not a fair comparison.
            .Where(file => !file.Item2.Contains("[PAD", StringComparison.Ordinal))
            .ToList();
    }
}
