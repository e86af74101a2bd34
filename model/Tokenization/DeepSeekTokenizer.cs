using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using Tune.Formats;

namespace Tune.Model.Tokenization;

/// <summary>
/// DeepSeek's byte-level BPE (DeepSeek LLM, V2, Coder-V2), built from a Hugging Face tokenizer.json.
/// There are two encoders on purpose. <see cref="EncodeText(string)"/> is for any text that came from outside
/// (user messages, training documents, FIM prefixes): a literal <c>&lt;｜fim▁begin｜&gt;</c> in it stays text, so data
/// cannot inject control tokens. <see cref="EncodeWithAddedTokens"/> also turns control-token text into control
/// tokens, as Hugging Face's <c>tokenizer(text)</c> does; prompt builders insert control tokens by id instead.
/// </summary>
public sealed class DeepSeekTokenizer
{
    // BOS/EOS when no tokenizer_config.json names them: DeepSeek LLM's tokenizer.json alone names no EOS, and every
    // DeepSeek release since LLM 7B uses these two.
    public const string DefaultBosToken = "<｜begin▁of▁sentence｜>";
    public const string DefaultEosToken = "<｜end▁of▁sentence｜>";

    private readonly BpeTokenizer _bpe;
    private readonly IReadOnlyList<string> _tokens;
    private readonly byte[][] _tokenBytes;
    private readonly bool[] _special;
    private readonly Dictionary<string, int> _addedIds;
    private readonly Regex? _userDefinedTokens;
    private readonly Regex? _allAddedTokens;

    public string Source { get; }

    /// <summary>Ids the tokenizer knows (BPE and added tokens); the model's embedding may have more rows.</summary>
    public int VocabSize => _tokens.Count;

    public int BosId { get; }
    public int EosId { get; }
    public int? PadId { get; }

    /// <summary>Whether a document starts with BOS (add_bos_token); prompt builders follow it.</summary>
    public bool AddBos { get; }

    /// <summary>Null for a tokenizer without FIM markers (DeepSeek LLM).</summary>
    public FimTokenIds? Fim { get; }

    public string? ChatTemplate { get; }

    private DeepSeekTokenizer(TokenizerJson file)
    {
        Source = file.Source;
        if (file.ByteLevel.AddPrefixSpace) Fail("ByteLevel.add_prefix_space", "true is not supported");
        if (file.ByteLevel.UseRegex) Fail("ByteLevel.use_regex", "true (the GPT-2 split regex) is not supported");
        foreach (AddedToken t in file.AddedTokens)
            if (t.Lstrip || t.Rstrip || t.SingleWord)
                Fail($"added_tokens (id {t.Id})", "lstrip, rstrip and single_word are not supported");

        _tokens = file.TokensById;
        _special = new bool[_tokens.Count];
        _tokenBytes = new byte[_tokens.Count][];
        foreach (var (token, id) in file.Vocab) _tokenBytes[id] = ByteLevelBytes(token);
        _addedIds = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (AddedToken t in file.AddedTokens)
        {
            _tokenBytes[t.Id] = Encoding.UTF8.GetBytes(t.Content);
            _special[t.Id] = t.Special;
            _addedIds[t.Content] = t.Id;
        }
        _userDefinedTokens = Alternation(file.AddedTokens.Where(t => t.Kind == TokenKind.UserDefined));
        _allAddedTokens = Alternation(file.AddedTokens);

        BosId = IdOf(file.BosToken ?? DefaultBosToken, "bos_token");
        EosId = IdOf(file.EosToken ?? DefaultEosToken, "eos_token");
        PadId = file.PadToken is null ? null : IdOf(file.PadToken, "pad_token");
        AddBos = file.AddBos;
        ChatTemplate = file.ChatTemplate;
        if (_addedIds.TryGetValue(FimTokenIds.BeginToken, out int begin)
            && _addedIds.TryGetValue(FimTokenIds.HoleToken, out int hole)
            && _addedIds.TryGetValue(FimTokenIds.EndToken, out int end))
            Fim = new FimTokenIds(begin, hole, end);

        _bpe = BpeTokenizer.Create(new BpeOptions(file.Vocab)
        {
            Merges = file.Merges.Select(MergeLine),
            PreTokenizer = new HfSplitPreTokenizer(file.SplitRegexes, Source),
            ByteLevel = true,
        });
    }

    /// <summary>Loads <c>tokenizer.json</c> and, when present, <c>tokenizer_config.json</c> from a model directory.</summary>
    public static DeepSeekTokenizer Load(string modelDirectory)
    {
        string config = Path.Combine(modelDirectory, "tokenizer_config.json");
        return FromJson(TokenizerJson.Load(Path.Combine(modelDirectory, "tokenizer.json"), File.Exists(config) ? config : null));
    }

    public static DeepSeekTokenizer FromJson(TokenizerJson file) => new(file);

    /// <summary>
    /// Encodes untrusted text without BOS. Control-token text stays text; only user-defined added tokens (DeepSeek
    /// LLM's 13 single characters) are matched, as llama.cpp matches them with <c>parse_special = false</c>.
    /// </summary>
    public int[] EncodeText(string text)
    {
        var ids = new List<int>();
        EncodeText(text, ids);
        return [.. ids];
    }

    /// <inheritdoc cref="EncodeText(string)"/>
    public void EncodeText(ReadOnlySpan<char> text, List<int> destination) => Encode(text, _userDefinedTokens, destination);

    /// <summary>
    /// Encodes text we wrote ourselves, without BOS, turning every added token's text (BOS, EOS, FIM markers) into
    /// that token: leftmost match first, the longest at a position. Never use it on user data.
    /// </summary>
    public int[] EncodeWithAddedTokens(string trustedText)
    {
        var ids = new List<int>();
        Encode(trustedText, _allAddedTokens, ids);
        return [.. ids];
    }

    /// <summary>The token as the vocabulary writes it: byte-level characters for BPE tokens (space is 'Ġ').</summary>
    public string IdToToken(int id) => _tokens[CheckId(id)];

    /// <summary>Whether the token is an added token marked special (BOS, EOS); FIM and chat markers are not.</summary>
    public bool IsSpecial(int id) => _special[CheckId(id)];

    /// <summary>Decodes to text. Invalid UTF-8 (a sequence cut off by the caller) becomes U+FFFD.</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecial)
    {
        var bytes = new List<byte>();
        foreach (int id in ids)
            if (!(skipSpecial && IsSpecial(id))) bytes.AddRange(TokenBytes(id));
        return Encoding.UTF8.GetString(CollectionsMarshal.AsSpan(bytes));
    }

    /// <summary>The token's UTF-8 bytes, which may be part of a character: GPT-2 byte map for BPE, UTF-8 for added tokens.</summary>
    internal ReadOnlySpan<byte> TokenBytes(int id) => _tokenBytes[CheckId(id)];

    private void Encode(ReadOnlySpan<char> text, Regex? addedTokens, List<int> destination)
    {
        // Added tokens are cut out of the raw text before pre-tokenization, as Hugging Face and llama.cpp do, so
        // the text between two of them is encoded exactly as if it stood alone.
        int at = 0;
        if (addedTokens is not null)
        {
            foreach (ValueMatch match in addedTokens.EnumerateMatches(text))
            {
                AppendBpe(text[at..match.Index], destination);
                destination.Add(_addedIds[text.Slice(match.Index, match.Length).ToString()]);
                at = match.Index + match.Length;
            }
        }
        AppendBpe(text[at..], destination);
    }

    private void AppendBpe(ReadOnlySpan<char> text, List<int> destination)
    {
        if (!text.IsEmpty) destination.AddRange(_bpe.EncodeToIds(text));
    }

    private int CheckId(int id) =>
        (uint)id < (uint)_tokens.Count ? id
            : throw new ArgumentOutOfRangeException(nameof(id), id, $"{Source} has token ids 0..{_tokens.Count - 1}");

    private int IdOf(string token, string field) =>
        _addedIds.TryGetValue(token, out int id) ? id
            : Fail<int>(field, $"\"{token}\" is not an added token");

    private byte[] ByteLevelBytes(string token)
    {
        var bytes = new byte[token.Length];
        for (int i = 0; i < token.Length; i++)
        {
            int b = ByteLevelAlphabet.ByteOf(token[i]);
            if (b < 0) Fail("model.vocab", $"token \"{token}\" has U+{(int)token[i]:X4}, which is not a byte-level character");
            bytes[i] = (byte)b;
        }
        return bytes;
    }

    private string MergeLine(BpeMerge merge)
    {
        // BpeOptions takes merges as "a b" lines; byte-level tokens never hold a space ('Ġ' stands for it).
        if (merge.Left.Contains(' ') || merge.Right.Contains(' '))
            Fail("model.merges", $"merge (\"{merge.Left}\", \"{merge.Right}\") has a space in a token");
        return $"{merge.Left} {merge.Right}";
    }

    /// <summary>Leftmost-longest matching of the tokens: .NET takes the first alternative that matches, so longest first.</summary>
    private static Regex? Alternation(IEnumerable<AddedToken> tokens)
    {
        string[] alternatives = [.. tokens.Select(t => t.Content).OrderByDescending(c => c.Length).Select(Regex.Escape)];
        return alternatives.Length == 0 ? null : new Regex(string.Join('|', alternatives), RegexOptions.CultureInvariant);
    }

    private void Fail(string field, string why) => throw new FormatException($"{Source}: {field}: {why}");

    private T Fail<T>(string field, string why) => throw new FormatException($"{Source}: {field}: {why}");
}
