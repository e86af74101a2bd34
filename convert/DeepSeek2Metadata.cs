using Tune.Formats;

namespace Tune.Convert;

/// <summary>
/// The general.* and deepseek2.* keys, with the types and in the order llama.cpp's converter writes them for
/// DeepseekV2ForCausalLM (gguf.md §2.2): TextModel.set_gguf_parameters, then DeepseekV2Model's own keys, then the
/// quantization version; the tokenizer keys follow (<see cref="GgufVocabulary"/>).
/// </summary>
public static class DeepSeek2Metadata
{
    public const string Architecture = "deepseek2";
    private const uint QuantizationVersion = 2;

    public static List<KeyValuePair<string, GgufValue>> Model(DeepSeekV2Config c, KvLayout layout, GgmlType type, string name,
        string sizeLabel, LlamaCppCompatibility compat)
    {
        var keys = new List<KeyValuePair<string, GgufValue>>();
        void Add(string key, GgufValue value) => keys.Add(new(key.StartsWith("general.", StringComparison.Ordinal) ? key : $"{Architecture}.{key}", value));
        void U32(string key, long value) => Add(key, GgufValue.UInt32(checked((uint)value)));
        void F32(string key, double value) => Add(key, GgufValue.Float32((float)value));

        Add("general.architecture", GgufValue.String(Architecture));
        Add("general.type", GgufValue.String("model"));
        Add("general.name", GgufValue.String(name));
        Add("general.size_label", GgufValue.String(sizeLabel));

        bool split = layout == KvLayout.Split;
        U32("block_count", c.NumHiddenLayers);
        U32("context_length", c.MaxPositionEmbeddings);
        U32("embedding_length", c.HiddenSize);
        U32("feed_forward_length", c.IntermediateSize);
        U32("attention.head_count", c.NumAttentionHeads);
        // MLA runs as multi-query attention over the latent in the split layout; legacy files run plain MHA.
        U32("attention.head_count_kv", split ? 1 : c.NumAttentionHeads);
        if (c.RopeScaling is { } yarn)
        {
            Add("rope.scaling.type", GgufValue.String(yarn.Type));
            F32("rope.scaling.factor", yarn.Factor);
            U32("rope.scaling.original_context_length", yarn.OriginalMaxPositionEmbeddings);
            F32("rope.scaling.yarn_beta_fast", yarn.BetaFast);
            F32("rope.scaling.yarn_beta_slow", yarn.BetaSlow);
        }
        F32("rope.freq_base", c.RopeTheta);
        F32("attention.layer_norm_rms_epsilon", c.RmsNormEps);
        bool moe = c.NRoutedExperts is not null;
        if (moe)
        {
            U32("expert_count", c.NRoutedExperts!.Value);
            U32("expert_used_count", c.NumExpertsPerTok);
            if (compat.ExpertGroups is var (groups, used))
            {
                U32("expert_group_count", groups);
                U32("expert_group_used_count", used);
            }
            U32("expert_gating_func", 1); // softmax, the only scoring_func DeepSeek-V2 has
        }
        Add("general.file_type", GgufValue.UInt32(OutputTypes.FileType(type)));

        U32("leading_dense_block_count", moe ? c.FirstKDenseReplace : c.NumHiddenLayers);
        U32("vocab_size", c.VocabSize);
        if (compat.QLoraRank is { } qLora) U32("attention.q_lora_rank", qLora);
        U32("attention.kv_lora_rank", c.KvLoraRank);
        if (split)
        {
            U32("attention.key_length", c.KvLoraRank + c.QkRopeHeadDim);
            U32("attention.value_length", c.KvLoraRank);
            U32("attention.key_length_mla", c.QHeadDim);
            U32("attention.value_length_mla", c.VHeadDim);
        }
        else
        {
            U32("attention.key_length", c.QHeadDim);
            U32("attention.value_length", c.VHeadDim);
        }
        U32("expert_feed_forward_length", c.MoeIntermediateSize);
        U32("expert_shared_count", compat.ZeroSharedExpert ? 1 : c.NSharedExperts);
        if (moe)
        {
            Add("expert_weights_scale", GgufValue.Float32(compat.ExpertWeightsScale));
            if (compat.ExpertWeightsNorm) Add("expert_weights_norm", GgufValue.Bool(true));
        }
        U32("rope.dimension_count", c.QkRopeHeadDim);
        // Stored ×0.1 for a legacy reason; llama.cpp divides by 0.1 again on load (TAG_DEEPSEEK2_YARN_LOG_MUL_FIX).
        if (c.RopeScaling is { MscaleAllDim: not 0 } scaled) F32("rope.scaling.yarn_log_multiplier", 0.1 * scaled.MscaleAllDim);
        Add("general.quantization_version", GgufValue.UInt32(QuantizationVersion));
        return keys;
    }

    /// <summary>gguf-py's size label: "{experts}x{shared + one expert's parameters}" for MoE models, else the total (8.1M, 16B …).</summary>
    public static string SizeLabel(IReadOnlyList<PlannedTensor> tensors)
    {
        long shared = 0, perExpert = 0, expertSum = 0, expertTensors = 0;
        foreach (PlannedTensor t in tensors)
        {
            long size = t.Dimensions.Aggregate(1L, (a, b) => a * b);
            if (t.Name.Contains("_exps.", StringComparison.Ordinal) && t.Dimensions.Length >= 3)
            {
                long experts = t.Dimensions[2];
                perExpert += size / experts;
                expertSum += experts;
                expertTensors++;
            }
            else
            {
                shared += size;
            }
        }
        return expertTensors > 0 ? $"{expertSum / expertTensors}x{Rounded(shared + perExpert)}" : Rounded(shared);
    }

    // model_weight_count_rounded_notation with min_digits 2: "1.5B", "16B", "64M".
    private static string Rounded(long count)
    {
        (double scaled, string suffix) = count switch
        {
            > 1_000_000_000_000 => (count * 1e-12, "T"),
            > 1_000_000_000 => (count * 1e-9, "B"),
            > 1_000_000 => (count * 1e-6, "M"),
            _ => (count * 1e-3, "K"),
        };
        int digits = Math.Round(scaled, MidpointRounding.ToEven).ToString(System.Globalization.CultureInfo.InvariantCulture).TrimStart('0').Length;
        return scaled.ToString("F" + Math.Max(2 - digits, 0), System.Globalization.CultureInfo.InvariantCulture) + suffix;
    }
}
