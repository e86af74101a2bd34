using System.Text.Json;

namespace Tune.Formats;

/// <summary>How llama.cpp classifies a token; the values are GGUF's <c>tokenizer.ggml.token_type</c> codes.</summary>
public enum TokenKind
{
    Normal = 1,
    Control = 3,
    UserDefined = 4,
}

/// <summary>One entry of <c>added_tokens</c> in tokenizer.json.</summary>
public sealed record AddedToken(int Id, string Content, bool Special, bool Normalized, bool Lstrip, bool Rstrip, bool SingleWord)
{
    /// <summary>
    /// llama.cpp's converter makes an added token CONTROL when it is special or merely looks special (DeepSeek marks
    /// its FIM and chat markers <c>special: false</c>), and USER_DEFINED otherwise. Only USER_DEFINED tokens are
    /// matched in plain text, which is why DeepSeek LLM's added "ü" turns <c>Führer</c> into 37 100014 71 6245.
    /// </summary>
    public TokenKind Kind => Special || LooksSpecial(Content) ? TokenKind.Control : TokenKind.UserDefined;

    // The rule of llama.cpp's convert_hf_to_gguf.py (does_token_look_special), so both sides classify alike.
    private static bool LooksSpecial(string content) =>
        content is "<pad>" or "<mask>" or "<2mass>" or "[@BOS@]"
        || (content.StartsWith("<|", StringComparison.Ordinal) && content.EndsWith("|>", StringComparison.Ordinal))
        || (content.StartsWith("<｜", StringComparison.Ordinal) && content.EndsWith("｜>", StringComparison.Ordinal))
        || (content.StartsWith("<unused", StringComparison.Ordinal) && content.EndsWith('>'));
}

/// <summary>One BPE merge rule: <see cref="Left"/> followed by <see cref="Right"/> becomes their concatenation.</summary>
public readonly record struct BpeMerge(string Left, string Right);

/// <summary>A <c>Split</c> pre-tokenizer step (behavior Isolated, not inverted): the regex as the file writes it.</summary>
public sealed record SplitRegex(string Pattern, string JsonPath);

/// <summary>The flags of the <c>ByteLevel</c> pre-tokenizer step.</summary>
public sealed record ByteLevelFlags(bool AddPrefixSpace, bool TrimOffsets, bool UseRegex);

/// <summary>
/// A Hugging Face byte-level BPE tokenizer.json (plus tokenizer_config.json when there is one) as plain data:
/// everything an encoder, a decoder or the GGUF vocab writer needs, validated once at load. Anything the file
/// says that this record cannot represent is an error naming the file and the JSON path, never silently dropped.
/// </summary>
public sealed record TokenizerJson
{
    public required string Source { get; init; }
    public required IReadOnlyDictionary<string, int> Vocab { get; init; }
    public required IReadOnlyList<BpeMerge> Merges { get; init; }
    public required IReadOnlyList<AddedToken> AddedTokens { get; init; }

    /// <summary>The pre-tokenizer's Split steps in order; each re-splits every piece the earlier ones produced.</summary>
    public required IReadOnlyList<SplitRegex> SplitRegexes { get; init; }

    public required ByteLevelFlags ByteLevel { get; init; }

    /// <summary>Every token by id, 0 .. count-1 without gaps: BPE tokens in byte-level form, added tokens as written.</summary>
    public required IReadOnlyList<string> TokensById { get; init; }

    public bool AddBos { get; init; }
    public bool AddEos { get; init; }
    public string? BosToken { get; init; }
    public string? EosToken { get; init; }
    public string? PadToken { get; init; }
    public string? ChatTemplate { get; init; }

    public TokenKind KindOf(int id) =>
        AddedTokens.FirstOrDefault(t => t.Id == id)?.Kind ?? TokenKind.Normal;

    public static TokenizerJson Load(string tokenizerJsonPath, string? tokenizerConfigPath)
    {
        string json = ReadText(tokenizerJsonPath);
        string? config = tokenizerConfigPath is null ? null : ReadText(tokenizerConfigPath);
        return Parse(json, tokenizerJsonPath, config, tokenizerConfigPath);
    }

    /// <summary>Parses tokenizer.json text; <paramref name="source"/> and <paramref name="configSource"/> name the files in errors.</summary>
    public static TokenizerJson Parse(string tokenizerJson, string source, string? tokenizerConfigJson = null, string? configSource = null)
    {
        using JsonDocument document = ParseDocument(tokenizerJson, source);
        var file = new JsonFile(source);
        JsonElement root = file.Object(document.RootElement, "$");

        file.RequireNull(root, "normalizer", "a normalizer is not supported (DeepSeek's byte-level BPE has none)");
        JsonElement model = file.Object(file.Required(root, "model", "$"), "model");
        var vocab = ReadVocab(file, model);
        var merges = ReadMerges(file, model);
        var added = ReadAddedTokens(file, root);
        var (splits, byteLevel) = ReadPreTokenizer(file, root);
        ReadDecoder(file, root);
        var template = ReadPostProcessor(file, root);

        var result = new TokenizerJson
        {
            Source = source,
            Vocab = vocab,
            Merges = merges,
            AddedTokens = added,
            SplitRegexes = splits,
            ByteLevel = byteLevel,
            TokensById = TokensInIdOrder(file, vocab, added),
            AddBos = template.Bos is not null,
            AddEos = template.Eos is not null,
            BosToken = template.Bos,
            EosToken = template.Eos,
        };
        return tokenizerConfigJson is null ? result : result.WithConfig(tokenizerConfigJson, configSource ?? "tokenizer_config.json");
    }

    private static string ReadText(string path)
    {
        try { return File.ReadAllText(path); }
        catch (IOException e) { throw new FormatException($"{path}: cannot read: {e.Message}", e); }
        catch (UnauthorizedAccessException e) { throw new FormatException($"{path}: cannot read: {e.Message}", e); }
    }

    private static JsonDocument ParseDocument(string json, string source)
    {
        try { return JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true }); }
        catch (JsonException e) { throw new FormatException($"{source}: not valid JSON: {e.Message}", e); }
    }

    private static Dictionary<string, int> ReadVocab(JsonFile file, JsonElement model)
    {
        string type = model.TryGetProperty("type", out JsonElement t) ? file.String(t, "model.type") : "BPE";
        if (type != "BPE") file.Fail("model.type", $"only \"BPE\" is supported, got \"{type}\"");
        file.RequireNull(model, "dropout", "BPE dropout is not supported", path: "model.dropout");
        file.RequireNull(model, "unk_token", "an unknown token is not supported (byte-level BPE covers every byte)", path: "model.unk_token");
        file.RequireNullOrEmpty(model, "continuing_subword_prefix", "model.continuing_subword_prefix");
        file.RequireNullOrEmpty(model, "end_of_word_suffix", "model.end_of_word_suffix");
        if (model.TryGetProperty("byte_fallback", out JsonElement fallback) && fallback.ValueKind == JsonValueKind.True)
            file.Fail("model.byte_fallback", "true is not supported (byte-level BPE needs no fallback)");
        if (model.TryGetProperty("ignore_merges", out JsonElement ignore) && ignore.ValueKind == JsonValueKind.True)
            file.Fail("model.ignore_merges", "true is not supported");

        JsonElement vocabElement = file.Object(file.Required(model, "vocab", "model"), "model.vocab");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        var seen = new HashSet<int>();
        foreach (JsonProperty entry in vocabElement.EnumerateObject())
        {
            // Paths are built only for an error: formatting 100,000 of them would double the load time.
            string Path() => $"model.vocab[{JsonSerializer.Serialize(entry.Name)}]";
            int id = entry.Value.ValueKind == JsonValueKind.Number && entry.Value.TryGetInt32(out int value) ? value : -1;
            if (id < 0) file.Fail(Path(), $"must be a non-negative 32-bit integer, got {entry.Value}");
            if (!seen.Add(id)) file.Fail(Path(), $"id {id} is given to more than one token");
            if (!vocab.TryAdd(entry.Name, id)) file.Fail(Path(), "the token is listed twice");
        }
        if (vocab.Count == 0) file.Fail("model.vocab", "is empty");
        return vocab;
    }

    private static List<BpeMerge> ReadMerges(JsonFile file, JsonElement model)
    {
        JsonElement array = file.Array(file.Required(model, "merges", "model"), "model.merges");
        var merges = new List<BpeMerge>(array.GetArrayLength());
        int i = -1;
        foreach (JsonElement m in array.EnumerateArray())
        {
            i++;
            string Path() => $"model.merges[{i}]";
            if (m.ValueKind == JsonValueKind.String)
            {
                // The legacy form "a b": tokens cannot contain a space there, so there is exactly one.
                string text = m.GetString()!;
                int space = text.IndexOf(' ');
                if (space <= 0 || space == text.Length - 1 || text.IndexOf(' ', space + 1) >= 0)
                    file.Fail(Path(), $"\"{text}\" is not two tokens separated by one space");
                merges.Add(new BpeMerge(text[..space], text[(space + 1)..]));
            }
            else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2
                     && m[0].ValueKind == JsonValueKind.String && m[1].ValueKind == JsonValueKind.String)
            {
                merges.Add(new BpeMerge(m[0].GetString()!, m[1].GetString()!));
            }
            else
            {
                file.Fail(Path(), "must be \"a b\" or [\"a\", \"b\"]");
            }
        }
        return merges;
    }

    private static List<AddedToken> ReadAddedTokens(JsonFile file, JsonElement root)
    {
        var tokens = new List<AddedToken>();
        if (!root.TryGetProperty("added_tokens", out JsonElement array) || array.ValueKind == JsonValueKind.Null) return tokens;
        file.Array(array, "added_tokens");
        int i = 0;
        foreach (JsonElement t in array.EnumerateArray())
        {
            string path = $"added_tokens[{i++}]";
            file.Object(t, path);
            tokens.Add(new AddedToken(
                Id: file.Int(file.Required(t, "id", path), path + ".id"),
                Content: file.String(file.Required(t, "content", path), path + ".content"),
                Special: file.OptionalBool(t, "special", path, false),
                Normalized: file.OptionalBool(t, "normalized", path, true),
                Lstrip: file.OptionalBool(t, "lstrip", path, false),
                Rstrip: file.OptionalBool(t, "rstrip", path, false),
                SingleWord: file.OptionalBool(t, "single_word", path, false)));
            if (tokens[^1].Content.Length == 0) file.Fail(path + ".content", "is empty");
        }
        return tokens;
    }

    private static (List<SplitRegex>, ByteLevelFlags) ReadPreTokenizer(JsonFile file, JsonElement root)
    {
        JsonElement pre = file.Required(root, "pre_tokenizer", "$");
        if (pre.ValueKind == JsonValueKind.Null) file.Fail("pre_tokenizer", "is null; only byte-level BPE is supported");
        file.Object(pre, "pre_tokenizer");

        var steps = new List<(JsonElement Step, string Path)>();
        if (file.Type(pre, "pre_tokenizer") == "Sequence")
        {
            JsonElement list = file.Array(file.Required(pre, "pretokenizers", "pre_tokenizer"), "pre_tokenizer.pretokenizers");
            int i = 0;
            foreach (JsonElement step in list.EnumerateArray()) steps.Add((step, $"pre_tokenizer.pretokenizers[{i++}]"));
        }
        else
        {
            steps.Add((pre, "pre_tokenizer"));
        }

        var splits = new List<SplitRegex>();
        ByteLevelFlags? byteLevel = null;
        foreach (var (step, path) in steps)
        {
            file.Object(step, path);
            string type = file.Type(step, path);
            if (byteLevel is not null)
                file.Fail(path, $"a {type} step after ByteLevel is not supported (it would split byte-level text)");
            switch (type)
            {
                case "Split":
                    splits.Add(ReadSplit(file, step, path));
                    break;
                case "ByteLevel":
                    byteLevel = new ByteLevelFlags(
                        file.OptionalBool(step, "add_prefix_space", path, true),
                        file.OptionalBool(step, "trim_offsets", path, true),
                        file.OptionalBool(step, "use_regex", path, true));
                    break;
                default:
                    file.Fail(path + ".type", $"pre-tokenizer \"{type}\" is not supported (only Split and ByteLevel)");
                    break;
            }
        }
        if (byteLevel is null) file.Fail("pre_tokenizer", "has no ByteLevel step; only byte-level BPE is supported");
        return (splits, byteLevel!);
    }

    private static SplitRegex ReadSplit(JsonFile file, JsonElement step, string path)
    {
        string behavior = file.String(file.Required(step, "behavior", path), path + ".behavior");
        if (behavior != "Isolated") file.Fail(path + ".behavior", $"only \"Isolated\" is supported, got \"{behavior}\"");
        if (file.OptionalBool(step, "invert", path, false)) file.Fail(path + ".invert", "true is not supported");
        JsonElement pattern = file.Object(file.Required(step, "pattern", path), path + ".pattern");
        if (!pattern.TryGetProperty("Regex", out JsonElement regex))
            file.Fail(path + ".pattern", "only {\"Regex\": ...} patterns are supported");
        return new SplitRegex(file.String(regex, path + ".pattern.Regex"), path + ".pattern.Regex");
    }

    private static void ReadDecoder(JsonFile file, JsonElement root)
    {
        if (!root.TryGetProperty("decoder", out JsonElement decoder) || decoder.ValueKind == JsonValueKind.Null) return;
        string type = file.Type(file.Object(decoder, "decoder"), "decoder");
        if (type != "ByteLevel") file.Fail("decoder.type", $"only the ByteLevel decoder is supported, got \"{type}\"");
    }

    /// <summary>The special tokens the post-processor puts around a single sequence (HF's add_bos/add_eos without a config).</summary>
    private static (string? Bos, string? Eos) ReadPostProcessor(JsonFile file, JsonElement root)
    {
        if (!root.TryGetProperty("post_processor", out JsonElement post) || post.ValueKind == JsonValueKind.Null) return (null, null);
        string type = file.Type(file.Object(post, "post_processor"), "post_processor");
        if (type == "ByteLevel") return (null, null);
        if (type != "TemplateProcessing")
            file.Fail("post_processor.type", $"only TemplateProcessing and ByteLevel are supported, got \"{type}\"");

        JsonElement single = file.Array(file.Required(post, "single", "post_processor"), "post_processor.single");
        var before = new List<string>();
        var after = new List<string>();
        bool sequenceSeen = false;
        int i = 0;
        foreach (JsonElement piece in single.EnumerateArray())
        {
            string path = $"post_processor.single[{i++}]";
            file.Object(piece, path);
            if (piece.TryGetProperty("Sequence", out _)) { sequenceSeen = true; continue; }
            if (!piece.TryGetProperty("SpecialToken", out JsonElement special))
                file.Fail(path, "must be a Sequence or a SpecialToken");
            string key = file.String(file.Required(special, "id", path + ".SpecialToken"), path + ".SpecialToken.id");
            (sequenceSeen ? after : before).Add(SpecialTokenContent(file, post, key));
        }
        if (before.Count > 1 || after.Count > 1)
            file.Fail("post_processor.single", "more than one special token on one side of the sequence is not supported");
        return (before.FirstOrDefault(), after.FirstOrDefault());
    }

    private static string SpecialTokenContent(JsonFile file, JsonElement post, string key)
    {
        if (!post.TryGetProperty("special_tokens", out JsonElement map) || !map.TryGetProperty(key, out JsonElement entry)) return key;
        string path = $"post_processor.special_tokens[{JsonSerializer.Serialize(key)}].tokens";
        JsonElement tokens = file.Array(file.Required(entry, "tokens", path), path);
        if (tokens.GetArrayLength() != 1) file.Fail(path, "must hold exactly one token");
        return file.String(tokens[0], path + "[0]");
    }

    private static List<string> TokensInIdOrder(JsonFile file, Dictionary<string, int> vocab, List<AddedToken> added)
    {
        int count = Math.Max(vocab.Values.Max(), added.Count == 0 ? -1 : added.Max(t => t.Id)) + 1;
        var byId = new string?[count];
        foreach (var (token, id) in vocab) byId[id] = token;
        for (int i = 0; i < added.Count; i++)
        {
            AddedToken t = added[i];
            if (t.Id < 0) file.Fail($"added_tokens[{i}].id", $"negative id {t.Id}");
            // HF lists a token both in the vocab and in added_tokens under the same id; that is one token, not two.
            if (byId[t.Id] is { } existing && existing != t.Content)
                file.Fail($"added_tokens[{i}].id", $"id {t.Id} is already \"{existing}\"");
            byId[t.Id] = t.Content;
        }
        int gap = Array.IndexOf(byId, null);
        if (gap >= 0) file.Fail("model.vocab", $"ids are not contiguous: no token has id {gap} (of 0..{count - 1})");
        return [.. byId.Select(token => token!)];
    }

    /// <summary>
    /// Applies tokenizer_config.json: its add_bos_token/add_eos_token and bos/eos/pad tokens take precedence over
    /// the post-processor, as in Hugging Face's LlamaTokenizerFast.
    /// </summary>
    private TokenizerJson WithConfig(string configJson, string configSource)
    {
        using JsonDocument document = ParseDocument(configJson, configSource);
        var file = new JsonFile(configSource);
        JsonElement root = file.Object(document.RootElement, "$");

        if (root.TryGetProperty("added_tokens_decoder", out JsonElement decoder) && decoder.ValueKind != JsonValueKind.Null)
        {
            foreach (JsonProperty entry in file.Object(decoder, "added_tokens_decoder").EnumerateObject())
            {
                string path = $"added_tokens_decoder[\"{entry.Name}\"]";
                if (!int.TryParse(entry.Name, out int id)) file.Fail(path, "the key is not a token id");
                string content = file.String(file.Required(entry.Value, "content", path), path + ".content");
                if (id >= TokensById.Count || TokensById[id] != content)
                    file.Fail(path, $"\"{content}\" disagrees with {Source}, which has " +
                        (id < TokensById.Count ? $"\"{TokensById[id]}\"" : "no such id"));
            }
        }

        string? bos = ConfigToken(file, root, "bos_token", BosToken);
        string? eos = ConfigToken(file, root, "eos_token", EosToken);
        string? pad = ConfigToken(file, root, "pad_token", null);
        foreach (var (key, token) in new[] { ("bos_token", bos), ("eos_token", eos), ("pad_token", pad) })
            if (token is not null && !TokensById.Contains(token))
                file.Fail(key, $"\"{token}\" is not a token of {Source}");

        return this with
        {
            AddBos = file.OptionalBool(root, "add_bos_token", "$", AddBos),
            AddEos = file.OptionalBool(root, "add_eos_token", "$", AddEos),
            BosToken = bos,
            EosToken = eos,
            PadToken = pad,
            ChatTemplate = ReadChatTemplate(file, root),
        };
    }

    private static string? ConfigToken(JsonFile file, JsonElement root, string key, string? fallback)
    {
        if (!root.TryGetProperty(key, out JsonElement value)) return fallback;
        return value.ValueKind switch
        {
            JsonValueKind.Null => null,
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Object => file.String(file.Required(value, "content", key), key + ".content"),
            _ => file.Fail<string?>(key, "must be a string, an AddedToken object or null"),
        };
    }

    private static string? ReadChatTemplate(JsonFile file, JsonElement root)
    {
        if (!root.TryGetProperty("chat_template", out JsonElement value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind == JsonValueKind.String) return value.GetString();
        // The list form names several templates; "default" is the one Hugging Face applies when none is asked for.
        int i = 0;
        foreach (JsonElement named in file.Array(value, "chat_template").EnumerateArray())
        {
            string path = $"chat_template[{i++}]";
            if (file.String(file.Required(named, "name", path), path + ".name") == "default")
                return file.String(file.Required(named, "template", path), path + ".template");
        }
        return file.Fail<string?>("chat_template", "the list has no template named \"default\"");
    }

    /// <summary>Typed access to JSON values whose failures name the file and the JSON path.</summary>
    private readonly struct JsonFile(string source)
    {
        public void Fail(string path, string why) => throw new FormatException($"{source}: {path}: {why}");

        public T Fail<T>(string path, string why) => throw new FormatException($"{source}: {path}: {why}");

        public JsonElement Required(JsonElement obj, string key, string path)
        {
            if (!obj.TryGetProperty(key, out JsonElement value)) Fail(path == "$" ? key : $"{path}.{key}", "is missing");
            return value;
        }

        public JsonElement Object(JsonElement e, string path)
        {
            if (e.ValueKind != JsonValueKind.Object) Fail(path, $"must be an object, got {e.ValueKind}");
            return e;
        }

        public JsonElement Array(JsonElement e, string path)
        {
            if (e.ValueKind != JsonValueKind.Array) Fail(path, $"must be an array, got {e.ValueKind}");
            return e;
        }

        public string String(JsonElement e, string path) =>
            e.ValueKind == JsonValueKind.String ? e.GetString()! : Fail<string>(path, $"must be a string, got {e.ValueKind}");

        public int Int(JsonElement e, string path) =>
            e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int v) ? v : Fail<int>(path, $"must be a 32-bit integer, got {e}");

        public string Type(JsonElement obj, string path) => String(Required(obj, "type", path), path + ".type");

        public bool OptionalBool(JsonElement obj, string key, string path, bool fallback)
        {
            if (!obj.TryGetProperty(key, out JsonElement value) || value.ValueKind == JsonValueKind.Null) return fallback;
            string at = path == "$" ? key : $"{path}.{key}";
            return value.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => Fail<bool>(at, $"must be true or false, got {value}"),
            };
        }

        public void RequireNull(JsonElement obj, string key, string why, string? path = null)
        {
            if (obj.TryGetProperty(key, out JsonElement value) && value.ValueKind != JsonValueKind.Null) Fail(path ?? key, why);
        }

        public void RequireNullOrEmpty(JsonElement obj, string key, string path)
        {
            if (obj.TryGetProperty(key, out JsonElement value) && value.ValueKind != JsonValueKind.Null
                && !(value.ValueKind == JsonValueKind.String && value.GetString() == ""))
                Fail(path, $"{value} is not supported");
        }
    }
}
