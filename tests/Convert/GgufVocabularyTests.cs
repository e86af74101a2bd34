using Tune.Convert;
using Tune.Formats;

namespace Tune.Tests.Convert;

/// <summary>tokenizer.* keys from the shipped DeepSeek-V2 tokenizer, as llama.cpp's _set_vocab_gpt2 writes them (gguf.md §3).</summary>
public sealed class GgufVocabularyTests
{
    private static readonly Lazy<TokenizerJson> Tokenizer = new(() => TokenizerJson.Load(
        Path.Combine(RepoPaths.Tokenizers, "tokenizer.json"), Path.Combine(RepoPaths.Tokenizers, "tokenizer_config.json")));

    private static Dictionary<string, GgufValue> Keys(DeepSeekV2Config? config = null) =>
        GgufVocabulary.Metadata(Tokenizer.Value, config ?? ConvertModels.Base, Tokenizer.Value.ChatTemplate)
            .ToDictionary(kv => kv.Key, kv => kv.Value);

    [Fact]
    public void KeysComeInTheConvertersOrder()
    {
        Assert.Equal(
        [
            "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
            "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id",
            "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token", "tokenizer.chat_template",
        ], GgufVocabulary.Metadata(Tokenizer.Value, ConvertModels.Base, "t").Select(kv => kv.Key));
    }

    [Fact]
    public void TheVocabularyIsByteLevelBpeWithTheDeepSeekLlmPreTokenizer()
    {
        var keys = Keys();
        Assert.Equal("gpt2", keys["tokenizer.ggml.model"].As<string>());
        Assert.Equal("deepseek-llm", keys["tokenizer.ggml.pre"].As<string>());
        string[] merges = keys["tokenizer.ggml.merges"].As<string[]>();
        Assert.Equal(99757, merges.Length);
        Assert.Equal("Ġ Ġ", merges[0]);
    }

    [Fact]
    public void TokensFillVocabSizeWithPadTokensOfTypeUnused()
    {
        var keys = Keys();
        string[] tokens = keys["tokenizer.ggml.tokens"].As<string[]>();
        int[] types = keys["tokenizer.ggml.token_type"].As<int[]>();
        Assert.Equal(102400, tokens.Length);
        Assert.Equal(102400, types.Length);
        Assert.Equal(GgufValueType.Int32, keys["tokenizer.ggml.token_type"].ElementType);
        Assert.Equal("<｜begin▁of▁sentence｜>", tokens[100000]);
        Assert.Equal("[PAD100009]", tokens[100009]);
        Assert.Equal("[PAD102399]", tokens[^1]);
        Assert.Equal(1, types[0]);        // a byte symbol is NORMAL for gpt2 vocabs, not BYTE
        Assert.Equal(1, types[99999]);
        Assert.Equal(3, types[100000]);   // BOS: special
        Assert.Equal(3, types[100002]);   // <｜fim▁hole｜>: special: false, but it looks special
        Assert.Equal(5, types[100009]);
        Assert.Equal(5, types[^1]);
    }

    [Fact]
    public void SpecialIdsAndFlagsComeFromTheTokenizerConfig()
    {
        var keys = Keys();
        Assert.Equal(100000u, keys["tokenizer.ggml.bos_token_id"].As<uint>());
        Assert.Equal(100001u, keys["tokenizer.ggml.eos_token_id"].As<uint>());
        Assert.Equal(100001u, keys["tokenizer.ggml.padding_token_id"].As<uint>());
        Assert.True(keys["tokenizer.ggml.add_bos_token"].As<bool>());
        Assert.False(keys["tokenizer.ggml.add_eos_token"].As<bool>());
        Assert.StartsWith("{% if not add_generation_prompt", keys["tokenizer.chat_template"].As<string>());
    }

    [Fact]
    public void AVocabSizeSmallerThanTheTokenizerIsAnError()
    {
        var e = Assert.Throws<FormatException>(() => Keys(ConvertModels.Base with { VocabSize = 512 }));
        Assert.Contains("tokenizer.json", e.Message);
        Assert.Contains("vocab_size 512", e.Message);
    }

    [Fact]
    public void AnUnknownPreTokenizerIsAnError()
    {
        TokenizerJson other = Tokenizer.Value with { SplitRegexes = [new SplitRegex(@"\p{L}+", "pre_tokenizer.pattern.Regex")] };
        var e = Assert.Throws<FormatException>(() => GgufVocabulary.Metadata(other, ConvertModels.Base, null));
        Assert.Contains("pre_tokenizer", e.Message);
    }
}
