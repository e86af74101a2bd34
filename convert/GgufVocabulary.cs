using System.Security.Cryptography;
using System.Text;
using Tune.Formats;

namespace Tune.Convert;

/// <summary>
/// The tokenizer.* keys of a byte-level BPE tokenizer as llama.cpp's converter writes them (_set_vocab_gpt2 and
/// gguf-py's SpecialVocab, gguf.md §3): exactly vocab_size tokens with [PAD{id}] fillers, i32 token types, merges as
/// "left right", special ids resolved through the added tokens, add_bos/add_eos and the chat template.
/// </summary>
public static class GgufVocabulary
{
    /// <summary>llama.cpp token types; NORMAL, CONTROL and USER_DEFINED come from <see cref="TokenKind"/>.</summary>
    private const int Unused = 5;

    /// <summary>
    /// llama.cpp names a pre-tokenizer by hashing how the HF tokenizer splits a probe text; without the HF library we
    /// recognise it by its Split regexes instead: SHA-256 of the patterns, each followed by '\n'. The DeepSeek LLM,
    /// DeepSeek-V2 and Coder-V2 tokenizers share one (llama-vocab.cpp LLAMA_VOCAB_PRE_TYPE_DEEPSEEK_LLM).
    /// </summary>
    private static readonly Dictionary<string, string> PreTokenizers = new(StringComparer.Ordinal)
    {
        ["68c254e8ff7dd8c77049e0c344148571670201522ec5a405fd2e638a8af638fd"] = "deepseek-llm",
    };

    public static string RegexHash(TokenizerJson tokenizer) =>
        System.Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Concat(tokenizer.SplitRegexes.Select(s => s.Pattern + "\n")))));

    /// <summary>The keys in the converter's order; <paramref name="config"/> supplies vocab_size and the fallback special ids.</summary>
    public static List<KeyValuePair<string, GgufValue>> Metadata(TokenizerJson tokenizer, DeepSeekV2Config config, string? chatTemplate)
    {
        if (!PreTokenizers.TryGetValue(RegexHash(tokenizer), out string? pre))
            throw new FormatException($"{tokenizer.Source}: pre_tokenizer: these Split regexes are not a pre-tokenizer llama.cpp knows for " +
                                      "DeepSeek-V2 (expected DeepSeek LLM's, tokenizer.ggml.pre = deepseek-llm)");
        int vocabSize = config.VocabSize;
        if (tokenizer.TokensById.Count > vocabSize)
            throw new FormatException($"{tokenizer.Source}: has {tokenizer.TokensById.Count} tokens, more than config.json vocab_size {vocabSize}");

        var tokens = new string[vocabSize];
        var types = new int[vocabSize];
        var added = tokenizer.AddedTokens.ToDictionary(t => t.Id, t => t.Kind);
        for (int id = 0; id < vocabSize; id++)
        {
            if (id >= tokenizer.TokensById.Count)
            {
                tokens[id] = $"[PAD{id}]";
                types[id] = Unused;
                continue;
            }
            string token = tokenizer.TokensById[id];
            TokenKind kind = added.GetValueOrDefault(id, TokenKind.Normal);
            // The converter pre-normalises user-defined tokens' SentencePiece spaces (it matters for Gemma-style vocabs).
            tokens[id] = kind == TokenKind.UserDefined ? token.Replace('\u2581', ' ') : token;
            types[id] = (int)kind;
        }
        // A space inside a merge part would be read as the separator; gguf-py writes it as U+0120 (Ġ), as byte-level BPE does.
        string[] merges = tokenizer.Merges.Select(m => $"{m.Left.Replace(' ', '\u0120')} {m.Right.Replace(' ', '\u0120')}").ToArray();

        var keys = new List<KeyValuePair<string, GgufValue>>
        {
            new("tokenizer.ggml.model", GgufValue.String("gpt2")),
            new("tokenizer.ggml.pre", GgufValue.String(pre)),
            new("tokenizer.ggml.tokens", GgufValue.Array(tokens)),
            new("tokenizer.ggml.token_type", GgufValue.Array(types)),
            new("tokenizer.ggml.merges", GgufValue.Array(merges)),
        };
        foreach (var (key, content, fallback) in new[]
                 {
                     ("tokenizer.ggml.bos_token_id", tokenizer.BosToken, (int?)config.BosTokenId),
                     ("tokenizer.ggml.eos_token_id", tokenizer.EosToken, config.EosTokenId),
                     ("tokenizer.ggml.padding_token_id", tokenizer.PadToken, config.PadTokenId),
                 })
        {
            // SpecialVocab: the token named by tokenizer_config.json, looked up among the added tokens; else config.json's id.
            int? id = tokenizer.AddedTokens.FirstOrDefault(t => t.Content == content)?.Id ?? fallback;
            if (id is { } valid && valid >= 0 && valid < vocabSize) keys.Add(new(key, GgufValue.UInt32((uint)valid)));
        }
        keys.Add(new("tokenizer.ggml.add_bos_token", GgufValue.Bool(tokenizer.AddBos)));
        keys.Add(new("tokenizer.ggml.add_eos_token", GgufValue.Bool(tokenizer.AddEos)));
        if (chatTemplate is not null) keys.Add(new("tokenizer.chat_template", GgufValue.String(chatTemplate)));
        return keys;
    }
}
