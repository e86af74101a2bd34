namespace Tune.Quantize;

/// <summary>The broad roles llama.cpp's type rules distinguish (llama-quant.cpp, tensor_category).</summary>
[Flags]
public enum TensorCategory
{
    Other = 1,
    Output = 1 << 1,
    TokenEmbedding = 1 << 2,
    AttentionQkv = 1 << 3,
    AttentionKvB = 1 << 4,
    AttentionV = 1 << 5,
    AttentionK = 1 << 6,
    AttentionQ = 1 << 7,
    AttentionOutput = 1 << 8,
    FfnUp = 1 << 9,
    FfnGate = 1 << 10,
    FfnDown = 1 << 11,

    /// <summary>The attention-v-like tensors llama.cpp counts and gives more bits (category_is_attn_v).</summary>
    AttentionVLike = AttentionQkv | AttentionKvB | AttentionV,
}

public static class TensorCategories
{
    // tensor_get_category: exact names first, then substrings, first match wins. For deepseek2 attn_k_b, attn_v_b,
    // attn_kv_a_mqa, attn_q_a and attn_q_b contain none of these and are Other.
    private static readonly (string Name, TensorCategory Category)[] Exact =
    [
        ("output.weight", TensorCategory.Output),
        ("token_embd.weight", TensorCategory.TokenEmbedding),
        ("per_layer_token_embd.weight", TensorCategory.TokenEmbedding),
    ];

    private static readonly (string Part, TensorCategory Category)[] Substrings =
    [
        ("attn_qkv.weight", TensorCategory.AttentionQkv),
        ("attn_kv_b.weight", TensorCategory.AttentionKvB),
        ("attn_v.weight", TensorCategory.AttentionV),
        ("attn_k.weight", TensorCategory.AttentionK),
        ("attn_q.weight", TensorCategory.AttentionQ),
        ("attn_output.weight", TensorCategory.AttentionOutput),
        ("ffn_up", TensorCategory.FfnUp),
        ("ffn_gate", TensorCategory.FfnGate),
        ("ffn_down", TensorCategory.FfnDown),
    ];

    public static TensorCategory Of(string name)
    {
        foreach (var (exact, category) in Exact)
            if (name == exact) return category;
        foreach (var (part, category) in Substrings)
            if (name.Contains(part, StringComparison.Ordinal)) return category;
        return TensorCategory.Other;
    }
}
