namespace Tune.Quantize;

/// <summary>
/// Which tensors llama.cpp quantises at all (llama-quant.cpp, tensor_allows_quantization with the default params):
/// weights of two or more dimensions, except norms, routers and the small or positional tables listed there.
/// Everything else is copied as it is.
/// </summary>
public static class QuantizableTensors
{
    private static readonly string[] ExcludedParts =
    [
        "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel", "per_layer_model_proj",
        "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight", "indexer.q_proj.weight",
        "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
        "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight", "time_mix_a1.weight",
        "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight", "time_mix_decay_w1.weight",
        "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight", "attn_rel_b.weight", ".position_embd", "sam.pos_embd",
        "sam.neck.", "sam.net_", ".rel_pos", ".patch_embd", ".patch_merger", "a.rvq.codebook", "mm.a.code_embd",
    ];

    private static readonly string[] ExcludedNames = ["position_embd.weight", "token_types.weight"];

    public static bool Allows(string name, ReadOnlySpan<long> dimensions) =>
        DimensionCount(dimensions) >= 2
        && name.EndsWith("weight", StringComparison.Ordinal)
        && !ExcludedParts.Any(part => name.Contains(part, StringComparison.Ordinal))
        && !ExcludedNames.Contains(name);

    /// <summary>ggml_n_dims: trailing dimensions of 1 do not count.</summary>
    public static int DimensionCount(ReadOnlySpan<long> dimensions)
    {
        for (int i = dimensions.Length - 1; i >= 1; i--)
            if (dimensions[i] > 1) return i + 1;
        return 1;
    }
}
