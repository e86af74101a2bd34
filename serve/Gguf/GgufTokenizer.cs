using Tune.Formats;
using Tune.Model.Tokenization;

namespace Tune.Serve.Gguf;

/// <summary>
/// The tokenizer a GGUF file carries (tokenizer.ggml.*, as <see cref="Convert.GgufVocabulary"/> and llama.cpp's
/// converter write them) as the <see cref="TokenizerJson"/> record our <see cref="DeepSeekTokenizer"/> is built from,
/// so a GGUF file alone is enough to serve. GGUF names its pre-tokenizer instead of storing the split regexes; the one
/// DeepSeek-V2 uses, deepseek-llm, is spelt out here.
/// </summary>
public static class GgufTokenizer
{
    /// <summary>llama.cpp's token types (llama-vocab.h): only normal, control and user-defined occur in byte-level BPE.</summary>
    private const int Normal = 1, Control = 3, UserDefined = 4, Unused = 5;

    /// <summary>
    /// The Split regexes of DeepSeek LLM / V2 / Coder-V2's tokenizer.json in order (llama.cpp's
    /// LLAMA_VOCAB_PRE_TYPE_DEEPSEEK_LLM); their hash is the one <see cref="Convert.GgufVocabulary"/> recognises.
    /// </summary>
    public static readonly IReadOnlyList<string> DeepSeekLlmSplits =
    [
        "[\r\n]",
        "\\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-\u02AF\u0370-\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06\uFB13-\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\uD801\uDC00-\uD801\uDC4F\uD801\uDCB0-\uD801\uDCD3\uD801\uDCD8-\uD801\uDCFB\uD803\uDC80-\uD803\uDCB2\uD803\uDCC0-\uD803\uDCF2\uD806\uDCA0-\uD806\uDCDF\uD83A\uDD00-\uD83A\uDD43]+",
        "\\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+",
        "\\s+$",
        "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+",
        "\\p{N}+",
    ];

    public static DeepSeekTokenizer Load(GgufFile file) => DeepSeekTokenizer.FromJson(Read(file));

    public static TokenizerJson Read(GgufFile file)
    {
        string model = file.Get<string>("tokenizer.ggml.model");
        string pre = file.TryGetValue("tokenizer.ggml.pre", out GgufValue? p) ? p.As<string>() : "default";
        if (model != "gpt2" || pre != "deepseek-llm")
            throw new NotSupportedException($"{file.Path}: tokenizer {model}/{pre}; DeepSeek-V2 models use gpt2/deepseek-llm (byte-level BPE)");
        string[] tokens = file.Get<string[]>("tokenizer.ggml.tokens");
        int[] types = file.Get<int[]>("tokenizer.ggml.token_type");
        if (types.Length != tokens.Length)
            throw new InvalidDataException($"{file.Path}: {tokens.Length} tokens but {types.Length} token types");
        // The converter pads the vocabulary to the embedding's rows with unused [PAD{id}] tokens; the tokenizer ends before them.
        int count = tokens.Length;
        while (count > 0 && types[count - 1] == Unused) count--;

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        var added = new List<AddedToken>();
        for (int id = 0; id < count; id++)
        {
            switch (types[id])
            {
                case Normal:
                    if (!vocab.TryAdd(tokens[id], id)) throw new InvalidDataException($"{file.Path}: token \"{tokens[id]}\" appears twice (ids {vocab[tokens[id]]} and {id})");
                    break;
                case Control or UserDefined:
                    added.Add(new AddedToken(id, tokens[id], Special: types[id] == Control, Normalized: false, Lstrip: false, Rstrip: false, SingleWord: false));
                    break;
                default:
                    throw new InvalidDataException($"{file.Path}: token {id} has type {types[id]}; byte-level BPE has only normal, control and user-defined tokens");
            }
        }
        var merges = file.Get<string[]>("tokenizer.ggml.merges").Select((m, i) =>
        {
            int space = m.IndexOf(' ');
            return space > 0 && space < m.Length - 1 && m.IndexOf(' ', space + 1) < 0
                ? new BpeMerge(m[..space], m[(space + 1)..])
                : throw new InvalidDataException($"{file.Path}: merge {i} \"{m}\" is not two parts separated by one space");
        }).ToArray();

        string? Token(string key) => file.TryGetValue(key, out GgufValue? v) && v.As<uint>() is var id && id < count ? tokens[id] : null;
        bool Flag(string key) => file.TryGetValue(key, out GgufValue? v) && v.As<bool>();
        return new TokenizerJson
        {
            Source = file.Path,
            Vocab = vocab,
            Merges = merges,
            AddedTokens = added,
            SplitRegexes = DeepSeekLlmSplits.Select((s, i) => new SplitRegex(s, $"tokenizer.ggml.pre deepseek-llm [{i}]")).ToArray(),
            ByteLevel = new ByteLevelFlags(AddPrefixSpace: false, TrimOffsets: true, UseRegex: false),
            TokensById = tokens[..count],
            AddBos = Flag("tokenizer.ggml.add_bos_token"),
            AddEos = Flag("tokenizer.ggml.add_eos_token"),
            BosToken = Token("tokenizer.ggml.bos_token_id"),
            EosToken = Token("tokenizer.ggml.eos_token_id"),
            PadToken = Token("tokenizer.ggml.padding_token_id"),
            ChatTemplate = file.TryGetValue("tokenizer.chat_template", out GgufValue? t) ? t.As<string>() : null,
        };
    }
}
