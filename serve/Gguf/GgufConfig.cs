using System.Globalization;
using Tune.Convert;
using Tune.Formats;

namespace Tune.Serve.Gguf;

/// <summary>
/// The <see cref="DeepSeekV2Config"/> a deepseek2 GGUF file describes: the inverse of <see cref="DeepSeek2Metadata"/>,
/// read so that the graph computes what llama.cpp computes on the same file. Where the converter rewrote the model
/// for llama.cpp (query rows pre-scaled for mscale ≠ mscale_all_dim, an all-zero shared expert, routed_scaling_factor
/// folded into expert_weights_scale) the file's own meaning is taken, which is llama.cpp's and the HF model's alike.
/// </summary>
public static class GgufConfig
{
    private const string Prefix = DeepSeek2Metadata.Architecture + ".";

    /// <summary>The layout the file stores kv_b_proj in: attn_k_b + attn_v_b (split) or attn_kv_b (legacy).</summary>
    public static KvLayout Layout(GgufFile file) =>
        file.TryGetTensor("blk.0.attn_k_b.weight", out _) ? KvLayout.Split : KvLayout.Legacy;

    public static DeepSeekV2Config Read(GgufFile file)
    {
        string arch = file.Get<string>("general.architecture");
        if (arch != DeepSeek2Metadata.Architecture)
            throw new InvalidDataException($"{file.Path}: general.architecture is \"{arch}\"; only {DeepSeek2Metadata.Architecture} (DeepSeek-V2) models load");
        int U32(string key) => checked((int)file.Get<uint>(Prefix + key));
        int? OptionalU32(string key) => file.TryGetValue(Prefix + key, out GgufValue? v) ? checked((int)v.As<uint>()) : null;
        double F32(string key) => Decimal(file.Get<float>(Prefix + key));

        bool split = Layout(file) == KvLayout.Split;
        int layers = U32("block_count");
        int heads = U32("attention.head_count");
        int rope = U32("rope.dimension_count");
        int qHead = split ? U32("attention.key_length_mla") : U32("attention.key_length");
        int vHead = split ? U32("attention.value_length_mla") : U32("attention.value_length");
        int? experts = OptionalU32("expert_count");
        int dense = OptionalU32("leading_dense_block_count") ?? 0;
        bool moe = experts is > 0 && dense < layers;
        int used = moe ? U32("expert_used_count") : 1;
        int? groups = OptionalU32("expert_group_count"), groupsUsed = OptionalU32("expert_group_used_count");
        bool limited = moe && groups is > 1 && groupsUsed is { } g && g < groups;
        float scale = moe && file.TryGetValue(Prefix + "expert_weights_scale", out GgufValue? s) ? s.As<float>() : 1.0f;
        bool normalise = moe && file.TryGetValue(Prefix + "expert_weights_norm", out GgufValue? n) && n.As<bool>();
        // llama.cpp normalises whenever the flag is set and then always scales; the HF rule normalises only for k > 1
        // and then does not scale. The two meet only where normalised weights are not scaled again.
        if (normalise && (scale != 1.0f || used == 1))
            throw new NotSupportedException($"{file.Path}: expert_weights_norm with expert_weights_scale {scale} and {used} expert(s) per token " +
                                            "is not a routing the DeepSeek-V2 graph computes");
        if (moe && file.TryGetValue(Prefix + "expert_gating_func", out GgufValue? gating) && gating.As<uint>() != 1)
            throw new NotSupportedException($"{file.Path}: expert_gating_func {gating.As<uint>()}; DeepSeek-V2 routes with softmax (1)");

        int qLora = OptionalU32("attention.q_lora_rank") ?? 0;
        RopeScaling? yarn = null;
        if (file.TryGetValue(Prefix + "rope.scaling.type", out GgufValue? type) && type.As<string>() != "none")
        {
            // Stored ×0.1 (DeepSeek2Metadata); llama.cpp takes mscale = mscale_all_dim from it, and so does this graph.
            double mscale = file.TryGetValue(Prefix + "rope.scaling.yarn_log_multiplier", out GgufValue? mul) ? Decimal(mul.As<float>() / 0.1f) : 0;
            yarn = new RopeScaling(type.As<string>(), F32("rope.scaling.factor"), U32("rope.scaling.original_context_length"),
                Optional("rope.scaling.yarn_beta_fast") ?? 32, Optional("rope.scaling.yarn_beta_slow") ?? 1, mscale, mscale);
        }
        double? Optional(string key) => file.TryGetValue(Prefix + key, out GgufValue? v) ? Decimal(v.As<float>()) : null;

        GgufTensorInfo embedding = file.Tensor("token_embd.weight");
        var config = new DeepSeekV2Config
        {
            VocabSize = OptionalU32("vocab_size") ?? checked((int)embedding.Dimensions[1]),
            HiddenSize = U32("embedding_length"),
            IntermediateSize = OptionalU32("feed_forward_length") ?? 0,
            MoeIntermediateSize = moe ? U32("expert_feed_forward_length") : 0,
            NumHiddenLayers = layers,
            NumAttentionHeads = heads,
            NumKeyValueHeads = heads,
            NSharedExperts = moe ? OptionalU32("expert_shared_count") ?? 0 : 0,
            NRoutedExperts = moe ? experts : null,
            NumExpertsPerTok = used,
            RoutedScalingFactor = normalise ? 1.0 : Decimal(scale),
            TopkMethod = limited ? "group_limited_greedy" : "greedy",
            NGroup = limited ? groups : null,
            TopkGroup = limited ? groupsUsed : null,
            NormTopkProb = normalise,
            FirstKDenseReplace = moe ? dense : 0,
            QLoraRank = qLora > 0 ? qLora : null,
            KvLoraRank = U32("attention.kv_lora_rank"),
            QkNopeHeadDim = qHead - rope,
            QkRopeHeadDim = rope,
            VHeadDim = vHead,
            RmsNormEps = F32("attention.layer_norm_rms_epsilon"),
            RopeTheta = F32("rope.freq_base"),
            RopeScaling = yarn,
            MaxPositionEmbeddings = U32("context_length"),
            BosTokenId = TokenId(file, "tokenizer.ggml.bos_token_id") ?? 100000,
            EosTokenId = TokenId(file, "tokenizer.ggml.eos_token_id") ?? 100001,
            TieWordEmbeddings = !file.TryGetTensor("output.weight", out _),
        };
        config.Validate(file.Path);
        return config;
    }

    /// <summary>
    /// The decimal a float32 key was written from (config.json's 1e-06, not 9.99999997e-07): the shortest text that
    /// round-trips the float, read as a double.
    /// </summary>
    private static double Decimal(float value) => double.Parse(value.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    private static int? TokenId(GgufFile file, string key) => file.TryGetValue(key, out GgufValue? v) ? checked((int)v.As<uint>()) : null;
}
