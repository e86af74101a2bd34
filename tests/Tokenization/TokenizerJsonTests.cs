using Tune.Formats;

namespace Tune.Tests.Tokenization;

public sealed class TokenizerJsonTests
{
    [Fact]
    public void TheV2FileParsesToTheExpectedRecord()
    {
        string dir = TokenizationFiles.V2TokenizerDirectory;
        var file = TokenizerJson.Load(Path.Combine(dir, "tokenizer.json"), Path.Combine(dir, "tokenizer_config.json"));
        Assert.Equal(100000, file.Vocab.Count);
        Assert.Equal(99757, file.Merges.Count);
        Assert.Equal(new BpeMerge("Ġ", "Ġ"), file.Merges[0]);
        Assert.Equal(9, file.AddedTokens.Count);
        Assert.Equal(100009, file.TokensById.Count);
        Assert.Equal(6, file.SplitRegexes.Count);
        Assert.Equal("[\r\n]", file.SplitRegexes[0].Pattern);
        Assert.Equal("pre_tokenizer.pretokenizers[5].pattern.Regex", file.SplitRegexes[5].JsonPath);
        Assert.Equal(new ByteLevelFlags(AddPrefixSpace: false, TrimOffsets: true, UseRegex: false), file.ByteLevel);
        Assert.True(file.AddBos);
        Assert.False(file.AddEos);
        Assert.Equal("<｜begin▁of▁sentence｜>", file.BosToken);
        Assert.Equal("<｜end▁of▁sentence｜>", file.EosToken);
        Assert.Equal("<｜end▁of▁sentence｜>", file.PadToken);
        Assert.StartsWith("{% if not add_generation_prompt", file.ChatTemplate);
        Assert.Equal(TokenKind.Control, file.KindOf(100000));
        Assert.Equal(TokenKind.Control, file.KindOf(100003));
        Assert.Equal(TokenKind.Control, file.KindOf(100008));
        Assert.Equal(TokenKind.Normal, file.KindOf(254));
    }

    [Fact]
    public void WithoutAConfigAddBosAndBosComeFromThePostProcessor()
    {
        var file = TokenizerJson.Load(TokenizationFiles.DeepSeekLlmTokenizerJson, tokenizerConfigPath: null);
        Assert.True(file.AddBos);
        Assert.Equal("<｜begin▁of▁sentence｜>", file.BosToken);
        Assert.Null(file.EosToken);
        Assert.Null(file.PadToken);
        Assert.Equal(TokenKind.UserDefined, file.KindOf(100014));
        Assert.Equal("ü", file.TokensById[100014]);
    }

    [Fact]
    public void MergesAreAcceptedAsStringsAndAsPairs()
    {
        var strings = TokenizerJson.Parse(Minimal(merges: "[\"a b\"]"), "strings.json");
        var pairs = TokenizerJson.Parse(Minimal(merges: "[[\"a\", \"b\"]]"), "pairs.json");
        Assert.Equal([new BpeMerge("a", "b")], strings.Merges);
        Assert.Equal(strings.Merges, pairs.Merges);
    }

    [Theory]
    [InlineData("model: \"WordPiece\"", "model.type")]
    [InlineData("pre: {\"type\": \"Whitespace\"}", "pre_tokenizer.type")]
    [InlineData("pre: {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\"}, {\"type\": \"ByteLevel\"}]}", "pre_tokenizer.pretokenizers[0].type")]
    [InlineData("pre: {\"type\": \"Split\", \"pattern\": {\"Regex\": \"x\"}, \"behavior\": \"Removed\", \"invert\": false}", "pre_tokenizer.behavior")]
    [InlineData("pre: {\"type\": \"Split\", \"pattern\": {\"String\": \"x\"}, \"behavior\": \"Isolated\", \"invert\": false}", "pre_tokenizer.pattern")]
    [InlineData("merges: [\"a\"]", "model.merges[0]")]
    [InlineData("normalizer: {\"type\": \"NFC\"}", "normalizer")]
    [InlineData("decoder: {\"type\": \"Metaspace\"}", "decoder.type")]
    public void UnsupportedContentIsAnErrorNamingTheFileAndThePath(string change, string path)
    {
        string[] parts = change.Split(": ", 2);
        string json = parts[0] switch
        {
            "model" => Minimal(modelType: parts[1]),
            "pre" => Minimal(preTokenizer: parts[1]),
            "merges" => Minimal(merges: parts[1]),
            "normalizer" => Minimal(normalizer: parts[1]),
            "decoder" => Minimal(decoder: parts[1]),
            _ => throw new ArgumentException(change),
        };
        var error = Assert.Throws<FormatException>(() => TokenizerJson.Parse(json, "broken/tokenizer.json"));
        Assert.StartsWith($"broken/tokenizer.json: {path}: ", error.Message);
    }

    [Fact]
    public void AConfigThatDisagreesWithTheTokenizerNamesTheConfig()
    {
        const string config = "{\"added_tokens_decoder\": {\"3\": {\"content\": \"<other>\"}}}";
        var error = Assert.Throws<FormatException>(() => TokenizerJson.Parse(Minimal(), "t.json", config, "c.json"));
        Assert.StartsWith("c.json: added_tokens_decoder[\"3\"]: ", error.Message);
    }

    private static string Minimal(
        string modelType = "\"BPE\"",
        string merges = "[\"a b\"]",
        string preTokenizer = "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false}",
        string normalizer = "null",
        string decoder = "{\"type\": \"ByteLevel\"}") =>
        $$"""
        {
          "added_tokens": [{"id": 3, "content": "<s>", "special": true}],
          "normalizer": {{normalizer}},
          "pre_tokenizer": {{preTokenizer}},
          "post_processor": null,
          "decoder": {{decoder}},
          "model": {"type": {{modelType}}, "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": {{merges}}}
        }
        """;
}
