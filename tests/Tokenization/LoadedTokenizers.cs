using Tune.Formats;
using Tune.Model.Tokenization;

namespace Tune.Tests.Tokenization;

/// <summary>Each tokenizer is loaded once per test run; loading is a few hundred milliseconds.</summary>
internal static class LoadedTokenizers
{
    private static readonly Lazy<DeepSeekTokenizer> LazyV2 =
        new(() => DeepSeekTokenizer.Load(TokenizationFiles.V2TokenizerDirectory));

    private static readonly Lazy<DeepSeekTokenizer> LazyDeepSeekLlm =
        new(() => DeepSeekTokenizer.FromJson(TokenizerJson.Load(TokenizationFiles.DeepSeekLlmTokenizerJson, tokenizerConfigPath: null)));

    /// <summary>shared/tokenizers/deepseek-v2/tokenizer.json with its tokenizer_config.json.</summary>
    public static DeepSeekTokenizer V2 => LazyV2.Value;

    /// <summary>DeepSeek LLM 7B's tokenizer.json, the one llama.cpp's deepseek-llm vocab and vectors are made from.</summary>
    public static DeepSeekTokenizer DeepSeekLlm => LazyDeepSeekLlm.Value;
}
