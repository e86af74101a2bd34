using System.Text.Json;

namespace Tune.Tests.Reference;

/// <summary>
/// The rope_scaling block. Absent keys take the defaults of DeepseekV2YarnRotaryEmbedding's constructor, and
/// mscale_all_dim = 0 is also what the softmax-scale code falls back to (spec §2.3 step 8, §2.4).
/// </summary>
public sealed record ReferenceRopeScaling(
    string Type,
    double Factor,
    int OriginalMaxPositionEmbeddings,
    double BetaFast,
    double BetaSlow,
    double Mscale,
    double MscaleAllDim);

/// <summary>
/// The config.json keys the forward pass reads, parsed on its own so that the reference shares no code with
/// Tune.Formats. Absent keys take the configuration_deepseek.py defaults (spec §1.1, last paragraph); the nullable
/// ones are those whose Python default is None.
/// </summary>
public sealed record ReferenceConfig(
    int VocabSize,
    int HiddenSize,
    int IntermediateSize,
    int MoeIntermediateSize,
    int NumHiddenLayers,
    int NumAttentionHeads,
    int? QLoraRank,
    int KvLoraRank,
    int QkNopeHeadDim,
    int QkRopeHeadDim,
    int VHeadDim,
    int? NRoutedExperts,
    int? NSharedExperts,
    int? NumExpertsPerTok,
    string TopkMethod,
    int? NGroup,
    int? TopkGroup,
    bool NormTopkProb,
    double RoutedScalingFactor,
    int FirstKDenseReplace,
    int MoeLayerFreq,
    string ScoringFunc,
    double AuxLossAlpha,
    string HiddenAct,
    double RmsNormEps,
    double RopeTheta,
    ReferenceRopeScaling? RopeScaling,
    bool TieWordEmbeddings,
    bool AttentionBias)
{
    public int QHeadDim => QkNopeHeadDim + QkRopeHeadDim;

    /// <summary>Spec §2.2 step 2.4.</summary>
    public bool IsMoeLayer(int layer) =>
        NRoutedExperts is not null && layer >= FirstKDenseReplace && layer % MoeLayerFreq == 0;

    public static ReferenceConfig Parse(string configJson)
    {
        using var document = JsonDocument.Parse(configJson);
        var root = document.RootElement;

        return new ReferenceConfig(
            VocabSize: Int(root, "vocab_size", 102400),
            HiddenSize: Int(root, "hidden_size", 4096),
            IntermediateSize: Int(root, "intermediate_size", 11008),
            MoeIntermediateSize: Int(root, "moe_intermediate_size", 1407),
            NumHiddenLayers: Int(root, "num_hidden_layers", 30),
            NumAttentionHeads: Int(root, "num_attention_heads", 32),
            QLoraRank: NullableInt(root, "q_lora_rank", 1536),
            KvLoraRank: Int(root, "kv_lora_rank", 512),
            QkNopeHeadDim: Int(root, "qk_nope_head_dim", 128),
            QkRopeHeadDim: Int(root, "qk_rope_head_dim", 64),
            VHeadDim: Int(root, "v_head_dim", 128),
            NRoutedExperts: NullableInt(root, "n_routed_experts", null),
            NSharedExperts: NullableInt(root, "n_shared_experts", null),
            NumExpertsPerTok: NullableInt(root, "num_experts_per_tok", null),
            TopkMethod: String(root, "topk_method", "gready"),
            NGroup: NullableInt(root, "n_group", null),
            TopkGroup: NullableInt(root, "topk_group", null),
            NormTopkProb: Bool(root, "norm_topk_prob", false),
            RoutedScalingFactor: Double(root, "routed_scaling_factor", 1.0),
            FirstKDenseReplace: Int(root, "first_k_dense_replace", 0),
            MoeLayerFreq: Int(root, "moe_layer_freq", 1),
            ScoringFunc: String(root, "scoring_func", "softmax"),
            AuxLossAlpha: Double(root, "aux_loss_alpha", 0.001),
            HiddenAct: String(root, "hidden_act", "silu"),
            RmsNormEps: Double(root, "rms_norm_eps", 1e-6),
            RopeTheta: Double(root, "rope_theta", 10000.0),
            RopeScaling: ParseRopeScaling(root),
            TieWordEmbeddings: Bool(root, "tie_word_embeddings", false),
            AttentionBias: Bool(root, "attention_bias", false));
    }

    static ReferenceRopeScaling? ParseRopeScaling(JsonElement root)
    {
        if (!root.TryGetProperty("rope_scaling", out var s) || s.ValueKind == JsonValueKind.Null)
            return null;
        // Newer transformers spell the field rope_type (spec §2.4); the remote code reads "type".
        string type = s.TryGetProperty("type", out var t) ? t.GetString()! : String(s, "rope_type", "");
        if (!s.TryGetProperty("factor", out var factor))
            throw new InvalidDataException("rope_scaling has no 'factor' (the remote code indexes it unconditionally)");
        return new ReferenceRopeScaling(
            Type: type,
            Factor: factor.GetDouble(),
            OriginalMaxPositionEmbeddings: Int(s, "original_max_position_embeddings", 4096),
            BetaFast: Double(s, "beta_fast", 32),
            BetaSlow: Double(s, "beta_slow", 1),
            Mscale: Double(s, "mscale", 1),
            MscaleAllDim: Double(s, "mscale_all_dim", 0));
    }

    static int Int(JsonElement o, string key, int fallback) =>
        o.TryGetProperty(key, out var v) ? v.GetInt32() : fallback;

    static int? NullableInt(JsonElement o, string key, int? fallback) =>
        !o.TryGetProperty(key, out var v) ? fallback : v.ValueKind == JsonValueKind.Null ? null : v.GetInt32();

    static double Double(JsonElement o, string key, double fallback) =>
        o.TryGetProperty(key, out var v) ? v.GetDouble() : fallback;

    static bool Bool(JsonElement o, string key, bool fallback) =>
        o.TryGetProperty(key, out var v) ? v.GetBoolean() : fallback;

    static string String(JsonElement o, string key, string fallback) =>
        o.TryGetProperty(key, out var v) ? v.GetString()! : fallback;
}
