using Tune.Formats;
using Tune.Model.Tokenization;

namespace Tune.Tests.Tokenization;

public sealed class HfSplitPreTokenizerTests
{
    private static readonly Lazy<HfSplitPreTokenizer> DeepSeek = new(() =>
    {
        var file = TokenizerJson.Load(TokenizationFiles.DeepSeekLlmTokenizerJson, tokenizerConfigPath: null);
        return new HfSplitPreTokenizer(file.SplitRegexes, file.Source);
    });

    [Theory]
    [InlineData("Äpfel", new[] { "Ä", "pfel" })]
    [InlineData("Führer", new[] { "F", "ü", "hrer" })]
    [InlineData(" éa", new[] { " é", "a" })]
    [InlineData("Hello world!", new[] { "Hello", " world", "!" })]
    [InlineData("a1234b", new[] { "a", "1234", "b" })]
    [InlineData("x  \n  y", new[] { "x", "  ", "\n", " ", " y" })]
    [InlineData("𐐷𐐶 𝐀", new[] { "𐐷𐐶", " 𝐀" })]
    [InlineData("🦙𝟎𝟏🦙", new[] { "🦙", "𝟎𝟏", "🦙" })]
    [InlineData("日本語 🦙", new[] { "日本語", " 🦙" })]
    public void SplitsAsHuggingFaceSequenceOfIsolatedSplits(string text, string[] pieces)
    {
        var actual = DeepSeek.Value.PreTokenize(text).Select(p => text.Substring(p.Offset, p.Length));
        Assert.Equal(pieces, actual);
    }

    [Fact]
    public void PiecesCoverTheTextInOrderWithoutOverlap()
    {
        foreach (string text in VariedStrings.Handwritten.Concat(VariedStrings.Random(200, seed: 3)))
        {
            int at = 0;
            foreach (var (offset, length) in DeepSeek.Value.PreTokenize(text))
            {
                Assert.Equal(at, offset);
                Assert.True(length > 0);
                at += length;
            }
            Assert.Equal(text.Length, at);
        }
    }

    [Fact]
    public void ARegexThatCannotBeTranslatedExactlyIsAnErrorNamingTheFileAndPath()
    {
        var error = Assert.Throws<FormatException>(() =>
            new HfSplitPreTokenizer([new SplitRegex("[^𐐀-𐑏]", "pre_tokenizer.pretokenizers[1].pattern.Regex")], "t.json"));
        Assert.StartsWith("t.json: pre_tokenizer.pretokenizers[1].pattern.Regex: ", error.Message);
    }
}
