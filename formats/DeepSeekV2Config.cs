using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tune.Formats;

/// <summary>YaRN (or linear/dynamic) rope scaling as `rope_scaling` in config.json describes it.</summary>
public sealed record RopeScaling(
    string Type,
    double Factor,
    int OriginalMaxPositionEmbeddings,
    double BetaFast,
    double BetaSlow,
    double Mscale,
    double MscaleAllDim);

/// <summary>
/// A DeepSeek-V2 config.json. Defaults are those of DeepSeek's configuration_deepseek.py, so a file that omits a key
/// means what it means to the Hugging Face remote code. Validated once, at load.
/// </summary>
public sealed record DeepSeekV2Config
{
    public string Architecture { get; init; } = "DeepseekV2ForCausalLM";
    public string ModelType { get; init; } = "deepseek_v2";
    public int VocabSize { get; init; } = 102400;
    public int HiddenSize { get; init; } = 4096;
    public int IntermediateSize { get; init; } = 11008;
    public int MoeIntermediateSize { get; init; } = 1407;
    public int NumHiddenLayers { get; init; } = 30;
    public int NumAttentionHeads { get; init; } = 32;
    public int NumKeyValueHeads { get; init; } = 32;
    public int NSharedExperts { get; init; }
    public int? NRoutedExperts { get; init; }
    public int NumExpertsPerTok { get; init; } = 1;
    public double RoutedScalingFactor { get; init; } = 1.0;
    public string TopkMethod { get; init; } = "greedy";
    public int? NGroup { get; init; }
    public int? TopkGroup { get; init; }
    public string ScoringFunc { get; init; } = "softmax";
    public bool NormTopkProb { get; init; }
    public int FirstKDenseReplace { get; init; }
    public int MoeLayerFreq { get; init; } = 1;
    public int? QLoraRank { get; init; } = 1536;
    public int KvLoraRank { get; init; } = 512;
    public int QkNopeHeadDim { get; init; } = 128;
    public int QkRopeHeadDim { get; init; } = 64;
    public int VHeadDim { get; init; } = 128;
    public string HiddenAct { get; init; } = "silu";
    public double RmsNormEps { get; init; } = 1e-6;
    public double RopeTheta { get; init; } = 10000;
    public RopeScaling? RopeScaling { get; init; }
    public int MaxPositionEmbeddings { get; init; } = 2048;
    public int BosTokenId { get; init; } = 100000;
    public int EosTokenId { get; init; } = 100001;
    public int? PadTokenId { get; init; }
    public bool TieWordEmbeddings { get; init; }
    public double AuxLossAlpha { get; init; } = 0.001;
    public bool SeqAux { get; init; } = true;
    public bool AttentionBias { get; init; }
    public double InitializerRange { get; init; } = 0.02;
    public string TorchDtype { get; init; } = "bfloat16";

    public int QHeadDim => QkNopeHeadDim + QkRopeHeadDim;

    /// <summary>Whether layer <paramref name="layer"/> has routed experts, by the rule of the HF code.</summary>
    public bool IsMoeLayer(int layer) =>
        NRoutedExperts is not null && layer >= FirstKDenseReplace && layer % MoeLayerFreq == 0;

    public static readonly string[] Architectures = ["DeepseekV2ForCausalLM", "DeepseekForCausalLM"];
    public static readonly string[] TopkMethods = ["greedy", "group_limited_greedy"];

    public static DeepSeekV2Config Load(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (IOException e) when (e is not (FileNotFoundException or DirectoryNotFoundException))
        {
            throw new FormatException($"{path}: cannot read: {e.Message}", e);
        }
        return Parse(text, path);
    }

    /// <summary>Parses and validates config.json text; <paramref name="source"/> names the file in errors.</summary>
    public static DeepSeekV2Config Parse(string json, string source)
    {
        JsonObject root;
        try
        {
            // Duplicates must fail here: JsonObject would otherwise throw a bare ArgumentException on first lookup.
            var options = new JsonDocumentOptions { AllowTrailingCommas = true, AllowDuplicateProperties = false };
            root = JsonNode.Parse(json, documentOptions: options) as JsonObject
                ?? throw new FormatException($"{source}: the top level is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new FormatException($"{source}: not valid JSON: {e.Message}", e);
        }
        var r = new ConfigReader(root, source);
        var d = new DeepSeekV2Config();
        var config = new DeepSeekV2Config
        {
            Architecture = r.Architecture(),
            ModelType = r.String("model_type", d.ModelType),
            VocabSize = r.Int("vocab_size", d.VocabSize),
            HiddenSize = r.Int("hidden_size", d.HiddenSize),
            IntermediateSize = r.Int("intermediate_size", d.IntermediateSize),
            MoeIntermediateSize = r.Int("moe_intermediate_size", d.MoeIntermediateSize),
            NumHiddenLayers = r.Int("num_hidden_layers", d.NumHiddenLayers),
            NumAttentionHeads = r.Int("num_attention_heads", d.NumAttentionHeads),
            NumKeyValueHeads = r.Int("num_key_value_heads", r.Int("num_attention_heads", d.NumAttentionHeads)),
            NSharedExperts = r.NullableInt("n_shared_experts", null) ?? 0,
            NRoutedExperts = r.NullableInt("n_routed_experts", null),
            NumExpertsPerTok = r.NullableInt("num_experts_per_tok", null) ?? d.NumExpertsPerTok,
            RoutedScalingFactor = r.Double("routed_scaling_factor", d.RoutedScalingFactor),
            TopkMethod = r.String("topk_method", "gready"),
            NGroup = r.NullableInt("n_group", null),
            TopkGroup = r.NullableInt("topk_group", null),
            ScoringFunc = r.String("scoring_func", d.ScoringFunc),
            NormTopkProb = r.Bool("norm_topk_prob", d.NormTopkProb),
            FirstKDenseReplace = r.Int("first_k_dense_replace", d.FirstKDenseReplace),
            MoeLayerFreq = r.Int("moe_layer_freq", d.MoeLayerFreq),
            QLoraRank = r.NullableInt("q_lora_rank", d.QLoraRank),
            KvLoraRank = r.Int("kv_lora_rank", d.KvLoraRank),
            QkNopeHeadDim = r.Int("qk_nope_head_dim", d.QkNopeHeadDim),
            QkRopeHeadDim = r.Int("qk_rope_head_dim", d.QkRopeHeadDim),
            VHeadDim = r.Int("v_head_dim", d.VHeadDim),
            HiddenAct = r.String("hidden_act", d.HiddenAct),
            RmsNormEps = r.Double("rms_norm_eps", d.RmsNormEps),
            RopeTheta = r.Double("rope_theta", d.RopeTheta),
            RopeScaling = r.RopeScaling(),
            MaxPositionEmbeddings = r.Int("max_position_embeddings", d.MaxPositionEmbeddings),
            BosTokenId = r.Int("bos_token_id", d.BosTokenId),
            EosTokenId = r.Int("eos_token_id", d.EosTokenId),
            PadTokenId = r.NullableInt("pad_token_id", null),
            TieWordEmbeddings = r.Bool("tie_word_embeddings", d.TieWordEmbeddings),
            AuxLossAlpha = r.Double("aux_loss_alpha", d.AuxLossAlpha),
            SeqAux = r.Bool("seq_aux", d.SeqAux),
            AttentionBias = r.Bool("attention_bias", d.AttentionBias),
            InitializerRange = r.Double("initializer_range", d.InitializerRange),
            TorchDtype = r.String("torch_dtype", d.TorchDtype),
        };
        config.Validate(source);
        return config;
    }

    /// <summary>Throws a <see cref="FormatException"/> naming <paramref name="source"/> and the offending key.</summary>
    public void Validate(string source)
    {
        void Fail(string key, string why) => throw new FormatException($"{source}: {key}: {why}");
        void Positive(string key, int value) { if (value <= 0) Fail(key, $"must be positive, got {value}"); }

        Positive("vocab_size", VocabSize);
        Positive("hidden_size", HiddenSize);
        Positive("num_hidden_layers", NumHiddenLayers);
        Positive("num_attention_heads", NumAttentionHeads);
        Positive("kv_lora_rank", KvLoraRank);
        Positive("qk_nope_head_dim", QkNopeHeadDim);
        Positive("v_head_dim", VHeadDim);
        Positive("max_position_embeddings", MaxPositionEmbeddings);
        if (QkRopeHeadDim <= 0 || QkRopeHeadDim % 2 != 0)
            Fail("qk_rope_head_dim", $"must be a positive even number (rope rotates pairs), got {QkRopeHeadDim}");
        if (QLoraRank is { } rq && rq <= 0) Fail("q_lora_rank", $"must be null or positive, got {rq}");
        if (HiddenAct != "silu") Fail("hidden_act", $"only \"silu\" is supported, got \"{HiddenAct}\"");
        if (AttentionBias) Fail("attention_bias", "true is not supported: DeepSeek-V2 projections have no bias");
        if (RmsNormEps <= 0) Fail("rms_norm_eps", $"must be positive, got {RmsNormEps}");
        if (RopeTheta <= 0) Fail("rope_theta", $"must be positive, got {RopeTheta}");
        if (BosTokenId < 0 || BosTokenId >= VocabSize) Fail("bos_token_id", $"{BosTokenId} is outside the vocabulary of {VocabSize}");
        if (EosTokenId < 0 || EosTokenId >= VocabSize) Fail("eos_token_id", $"{EosTokenId} is outside the vocabulary of {VocabSize}");
        if (FirstKDenseReplace < 0) Fail("first_k_dense_replace", $"must not be negative, got {FirstKDenseReplace}");
        if (MoeLayerFreq <= 0) Fail("moe_layer_freq", $"must be positive, got {MoeLayerFreq}");

        bool anyDense = Enumerable.Range(0, NumHiddenLayers).Any(l => !IsMoeLayer(l));
        if (anyDense) Positive("intermediate_size", IntermediateSize);

        if (NRoutedExperts is not { } experts) return;
        Positive("n_routed_experts", experts);
        Positive("moe_intermediate_size", MoeIntermediateSize);
        if (NSharedExperts < 0) Fail("n_shared_experts", $"must not be negative, got {NSharedExperts}");
        if (NumExpertsPerTok <= 0 || NumExpertsPerTok > experts)
            Fail("num_experts_per_tok", $"must be between 1 and n_routed_experts ({experts}), got {NumExpertsPerTok}");
        if (ScoringFunc != "softmax")
            Fail("scoring_func", $"DeepSeek-V2 routes with \"softmax\"; \"{ScoringFunc}\" is not supported");
        if (TopkMethod == "gready")
            Fail("topk_method", "\"gready\" is the misspelt default of configuration_deepseek.py; write \"greedy\" " +
                 "(Coder-V2-Lite, V2-Lite) or \"group_limited_greedy\" (the 236B models)");
        if (!TopkMethods.Contains(TopkMethod))
            Fail("topk_method", $"unknown method \"{TopkMethod}\"; expected one of {string.Join(", ", TopkMethods)}");
        if (TopkMethod == "group_limited_greedy")
        {
            if (NGroup is not { } groups || groups <= 0) Fail("n_group", "group_limited_greedy needs a positive n_group");
            else if (experts % groups != 0) Fail("n_group", $"{groups} groups do not divide {experts} routed experts");
            else if (TopkGroup is not { } keep || keep <= 0 || keep > groups)
                Fail("topk_group", $"group_limited_greedy needs topk_group between 1 and n_group ({groups})");
            else if (keep * (experts / groups) < NumExpertsPerTok)
                Fail("topk_group", $"{keep} groups of {experts / groups} experts cannot supply {NumExpertsPerTok} experts per token");
        }
    }

    /// <summary>config.json text as the Hugging Face tools write it (snake_case keys).</summary>
    public string ToJson()
    {
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray(Architecture),
            ["model_type"] = ModelType,
            ["auto_map"] = new JsonObject
            {
                ["AutoConfig"] = "configuration_deepseek.DeepseekV2Config",
                ["AutoModel"] = "modeling_deepseek.DeepseekV2Model",
                ["AutoModelForCausalLM"] = "modeling_deepseek.DeepseekV2ForCausalLM",
            },
            ["vocab_size"] = VocabSize,
            ["hidden_size"] = HiddenSize,
            ["intermediate_size"] = IntermediateSize,
            ["moe_intermediate_size"] = MoeIntermediateSize,
            ["num_hidden_layers"] = NumHiddenLayers,
            ["num_attention_heads"] = NumAttentionHeads,
            ["num_key_value_heads"] = NumKeyValueHeads,
            ["n_shared_experts"] = NSharedExperts,
            ["n_routed_experts"] = NRoutedExperts,
            ["num_experts_per_tok"] = NumExpertsPerTok,
            ["routed_scaling_factor"] = RoutedScalingFactor,
            ["topk_method"] = TopkMethod,
            ["n_group"] = NGroup,
            ["topk_group"] = TopkGroup,
            ["scoring_func"] = ScoringFunc,
            ["norm_topk_prob"] = NormTopkProb,
            ["first_k_dense_replace"] = FirstKDenseReplace,
            ["moe_layer_freq"] = MoeLayerFreq,
            ["q_lora_rank"] = QLoraRank,
            ["kv_lora_rank"] = KvLoraRank,
            ["qk_nope_head_dim"] = QkNopeHeadDim,
            ["qk_rope_head_dim"] = QkRopeHeadDim,
            ["v_head_dim"] = VHeadDim,
            ["hidden_act"] = HiddenAct,
            ["rms_norm_eps"] = RmsNormEps,
            ["rope_theta"] = RopeTheta,
            ["rope_scaling"] = RopeScaling is { } s
                ? new JsonObject
                {
                    ["type"] = s.Type,
                    ["factor"] = s.Factor,
                    ["original_max_position_embeddings"] = s.OriginalMaxPositionEmbeddings,
                    ["beta_fast"] = s.BetaFast,
                    ["beta_slow"] = s.BetaSlow,
                    ["mscale"] = s.Mscale,
                    ["mscale_all_dim"] = s.MscaleAllDim,
                }
                : null,
            ["max_position_embeddings"] = MaxPositionEmbeddings,
            ["bos_token_id"] = BosTokenId,
            ["eos_token_id"] = EosTokenId,
            ["tie_word_embeddings"] = TieWordEmbeddings,
            ["aux_loss_alpha"] = AuxLossAlpha,
            ["seq_aux"] = SeqAux,
            ["attention_bias"] = AttentionBias,
            ["attention_dropout"] = 0.0,
            ["pretraining_tp"] = 1,
            ["initializer_range"] = InitializerRange,
            ["torch_dtype"] = TorchDtype,
            ["use_cache"] = true,
        };
        if (PadTokenId is { } pad) o["pad_token_id"] = pad;
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Typed access to config keys with errors that name the file and key.</summary>
    private sealed class ConfigReader(JsonObject root, string source)
    {
        private FormatException Error(string key, string why) => new($"{source}: {key}: {why}");

        private JsonNode? Get(string key, out bool present)
        {
            present = root.TryGetPropertyValue(key, out JsonNode? node);
            return node;
        }

        public string Architecture()
        {
            JsonNode? node = Get("architectures", out bool present);
            if (!present || node is null) return "DeepseekV2ForCausalLM";
            if (node is not JsonArray { Count: > 0 } list || list[0] is not JsonValue v || !v.TryGetValue(out string? name))
                throw Error("architectures", "expected a non-empty list of class names");
            if (!Architectures.Contains(name))
                throw Error("architectures", $"\"{name}\" is not a DeepSeek-V2 model; expected {string.Join(" or ", Architectures)}");
            return name;
        }

        public string String(string key, string fallback)
        {
            JsonNode? node = Get(key, out bool present);
            if (!present || node is null) return fallback;
            if (node is JsonValue v && v.TryGetValue(out string? s)) return s;
            throw Error(key, $"expected a string, got {node.ToJsonString()}");
        }

        public int Int(string key, int fallback) =>
            NullableInt(key, fallback) ?? throw Error(key, "must not be null");

        public int? NullableInt(string key, int? fallback)
        {
            JsonNode? node = Get(key, out bool present);
            if (!present) return fallback;
            if (node is null) return null;
            if (node is JsonValue v && v.TryGetValue(out JsonElement e) && e.ValueKind == JsonValueKind.Number)
            {
                if (e.TryGetInt32(out int i)) return i;
                if (e.TryGetDouble(out double d) && d == Math.Floor(d) && Math.Abs(d) <= int.MaxValue) return (int)d;
            }
            throw Error(key, $"expected an integer, got {node.ToJsonString()}");
        }

        public double Double(string key, double fallback)
        {
            JsonNode? node = Get(key, out bool present);
            if (!present || node is null) return fallback;
            if (node is JsonValue v && v.TryGetValue(out JsonElement e) && e.ValueKind == JsonValueKind.Number)
                return e.GetDouble();
            throw Error(key, $"expected a number, got {node.ToJsonString()}");
        }

        public bool Bool(string key, bool fallback)
        {
            JsonNode? node = Get(key, out bool present);
            if (!present || node is null) return fallback;
            if (node is JsonValue v && v.TryGetValue(out JsonElement e) && e.ValueKind is JsonValueKind.True or JsonValueKind.False)
                return e.GetBoolean();
            throw Error(key, $"expected true or false, got {node.ToJsonString()}");
        }

        public RopeScaling? RopeScaling()
        {
            JsonNode? node = Get("rope_scaling", out bool present);
            if (!present || node is null) return null;
            if (node is not JsonObject o) throw Error("rope_scaling", "expected an object or null");
            var inner = new ConfigReader(o, source);
            string type = inner.String("type", inner.String("rope_type", ""));
            if (type is not ("yarn" or "linear" or "dynamic"))
                throw Error("rope_scaling.type", $"expected \"yarn\", \"linear\" or \"dynamic\", got \"{type}\"");
            if (type != "yarn")
                throw Error("rope_scaling.type", $"\"{type}\" scaling is not supported; released DeepSeek-V2 configs use \"yarn\"");
            double factor = inner.Double("factor", 1.0);
            if (factor <= 0) throw Error("rope_scaling.factor", $"must be positive, got {factor}");
            int original = inner.Int("original_max_position_embeddings", 4096);
            if (original <= 0) throw Error("rope_scaling.original_max_position_embeddings", $"must be positive, got {original}");
            return new RopeScaling(type, factor, original,
                inner.Double("beta_fast", 32), inner.Double("beta_slow", 1),
                inner.Double("mscale", 1), inner.Double("mscale_all_dim", 0));
        }
    }
}
