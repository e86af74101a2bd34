namespace Tune.Tests.Reference;

/// <summary>One tensor of a synthetic checkpoint: HF shape and row-major values.</summary>
public sealed record TinyTensor(int[] Shape, double[] Values);

/// <summary>
/// Seeded random weights for a tiny config, named and shaped after the spec's weight table (§2.1), so that the
/// reference and the TorchSharp model can be fed the same checkpoint.
/// </summary>
public static class TinyCheckpoint
{
    /// <summary>
    /// Matrices are normal(0, std) so attention is far from uniform; norm weights are 1 + normal(0, std) so the
    /// activations keep their size through the layers.
    /// </summary>
    public static IReadOnlyDictionary<string, TinyTensor> Create(string configJson, int seed, double std = 0.2)
    {
        var c = ReferenceConfig.Parse(configJson);
        var random = new Random(seed);
        var tensors = new Dictionary<string, TinyTensor>();
        foreach (var (name, shape) in Shapes(c))
        {
            var values = new double[shape.Aggregate(1, (a, b) => a * b)];
            for (int i = 0; i < values.Length; i++)
                values[i] = (shape.Length == 1 ? 1.0 : 0.0) + std * Normal(random);
            tensors.Add(name, new TinyTensor(shape, values));
        }
        return tensors;
    }

    /// <summary>Every tensor a checkpoint of this config holds, in the order of the spec's table (§2.1).</summary>
    public static IEnumerable<(string Name, int[] Shape)> Shapes(ReferenceConfig c)
    {
        int d = c.HiddenSize, h = c.NumAttentionHeads, r = c.KvLoraRank;
        yield return ("model.embed_tokens.weight", [c.VocabSize, d]);
        for (int i = 0; i < c.NumHiddenLayers; i++)
        {
            string p = $"model.layers.{i}.";
            yield return (p + "input_layernorm.weight", [d]);
            if (c.QLoraRank is int rq)
            {
                yield return (p + "self_attn.q_a_proj.weight", [rq, d]);
                yield return (p + "self_attn.q_a_layernorm.weight", [rq]);
                yield return (p + "self_attn.q_b_proj.weight", [h * c.QHeadDim, rq]);
            }
            else
            {
                yield return (p + "self_attn.q_proj.weight", [h * c.QHeadDim, d]);
            }
            yield return (p + "self_attn.kv_a_proj_with_mqa.weight", [r + c.QkRopeHeadDim, d]);
            yield return (p + "self_attn.kv_a_layernorm.weight", [r]);
            yield return (p + "self_attn.kv_b_proj.weight", [h * (c.QkNopeHeadDim + c.VHeadDim), r]);
            yield return (p + "self_attn.o_proj.weight", [d, h * c.VHeadDim]);
            yield return (p + "post_attention_layernorm.weight", [d]);
            if (c.IsMoeLayer(i))
            {
                yield return (p + "mlp.gate.weight", [c.NRoutedExperts!.Value, d]);
                for (int e = 0; e < c.NRoutedExperts; e++)
                    foreach (var t in MlpShapes($"{p}mlp.experts.{e}.", c.MoeIntermediateSize, d))
                        yield return t;
                if (c.NSharedExperts is int shared and > 0)
                    foreach (var t in MlpShapes(p + "mlp.shared_experts.", c.MoeIntermediateSize * shared, d))
                        yield return t;
            }
            else
            {
                foreach (var t in MlpShapes(p + "mlp.", c.IntermediateSize, d))
                    yield return t;
            }
        }
        yield return ("model.norm.weight", [d]);
        if (!c.TieWordEmbeddings)
            yield return ("lm_head.weight", [c.VocabSize, d]);
    }

    static IEnumerable<(string, int[])> MlpShapes(string p, int width, int d) =>
        [(p + "gate_proj.weight", [width, d]), (p + "up_proj.weight", [width, d]), (p + "down_proj.weight", [d, width])];

    /// <summary>Box-Muller, so the draws depend on nothing but System.Random's seeded stream.</summary>
    static double Normal(Random random) =>
        Math.Sqrt(-2.0 * Math.Log(1.0 - random.NextDouble())) * Math.Cos(2.0 * Math.PI * random.NextDouble());
}

/// <summary>Tiny configs that between them turn every knob of the forward pass (spec §1, §2).</summary>
public static class TinyConfigs
{
    /// <summary>Plain q_proj, plain RoPE, greedy top-3 of 8 experts, 2 shared, first layer dense; v_head_dim ≠ qk_nope_head_dim.</summary>
    public const string PlainRope = """
        {"vocab_size": 97, "hidden_size": 32, "intermediate_size": 48, "moe_intermediate_size": 16,
         "num_hidden_layers": 3, "num_attention_heads": 4, "q_lora_rank": null, "kv_lora_rank": 12,
         "qk_nope_head_dim": 8, "qk_rope_head_dim": 8, "v_head_dim": 6,
         "n_routed_experts": 8, "n_shared_experts": 2, "num_experts_per_tok": 3, "topk_method": "greedy",
         "norm_topk_prob": false, "routed_scaling_factor": 1.0, "first_k_dense_replace": 1, "moe_layer_freq": 1,
         "rms_norm_eps": 1e-6, "rope_theta": 10000, "rope_scaling": null, "tie_word_embeddings": false}
        """;

    /// <summary>
    /// q_lora_rank set, YaRN with mscale = mscale_all_dim, group-limited routing scaled by 2.5. With rope dim 8 and
    /// original 4096 the correction range is low 1, high 3, so the four frequencies are kept, kept, blended, interpolated.
    /// </summary>
    public const string YarnQLora = """
        {"vocab_size": 89, "hidden_size": 24, "intermediate_size": 40, "moe_intermediate_size": 12,
         "num_hidden_layers": 2, "num_attention_heads": 3, "q_lora_rank": 10, "kv_lora_rank": 16,
         "qk_nope_head_dim": 6, "qk_rope_head_dim": 8, "v_head_dim": 10,
         "n_routed_experts": 8, "n_shared_experts": 1, "num_experts_per_tok": 2, "topk_method": "group_limited_greedy",
         "n_group": 4, "topk_group": 2, "norm_topk_prob": false, "routed_scaling_factor": 2.5,
         "first_k_dense_replace": 1, "moe_layer_freq": 1, "rms_norm_eps": 1e-6, "rope_theta": 10000,
         "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                          "beta_fast": 32, "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 0.707},
         "tie_word_embeddings": false}
        """;

    /// <summary>
    /// YaRN with mscale ≠ mscale_all_dim (cos/sin scaled by 1.0857), normalised top-2 (scaling factor ignored),
    /// no shared experts, MoE on even layers from layer 0, tied embeddings, rms_norm_eps ≠ the latent norms' 1e-6.
    /// </summary>
    public const string YarnUnequalMscale = """
        {"vocab_size": 71, "hidden_size": 16, "intermediate_size": 24, "moe_intermediate_size": 8,
         "num_hidden_layers": 3, "num_attention_heads": 2, "q_lora_rank": null, "kv_lora_rank": 8,
         "qk_nope_head_dim": 4, "qk_rope_head_dim": 4, "v_head_dim": 4,
         "n_routed_experts": 4, "num_experts_per_tok": 2, "topk_method": "greedy",
         "norm_topk_prob": true, "routed_scaling_factor": 16.0, "first_k_dense_replace": 0, "moe_layer_freq": 2,
         "rms_norm_eps": 1e-3, "rope_theta": 500,
         "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 64,
                          "mscale": 1.0, "mscale_all_dim": 0.707},
         "tie_word_embeddings": true}
        """;

    /// <summary>Lite-shaped (spec §1.1 rope_scaling, top-6 of 16 greedy, 2 shared) at hidden 64 and vocab 1000.</summary>
    public const string LiteShaped = """
        {"vocab_size": 1000, "hidden_size": 64, "intermediate_size": 96, "moe_intermediate_size": 16,
         "num_hidden_layers": 2, "num_attention_heads": 4, "q_lora_rank": null, "kv_lora_rank": 32,
         "qk_nope_head_dim": 16, "qk_rope_head_dim": 8, "v_head_dim": 16,
         "n_routed_experts": 16, "n_shared_experts": 2, "num_experts_per_tok": 6, "topk_method": "greedy",
         "n_group": 1, "topk_group": 1, "norm_topk_prob": false, "routed_scaling_factor": 1.0,
         "first_k_dense_replace": 1, "moe_layer_freq": 1, "scoring_func": "softmax", "aux_loss_alpha": 0.001,
         "seq_aux": true, "hidden_act": "silu", "rms_norm_eps": 1e-6, "rope_theta": 10000,
         "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                          "beta_fast": 32, "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 0.707},
         "tie_word_embeddings": false, "attention_bias": false}
        """;

    public static IReadOnlyDictionary<string, string> All { get; } = new Dictionary<string, string>
    {
        [nameof(PlainRope)] = PlainRope,
        [nameof(YarnQLora)] = YarnQLora,
        [nameof(YarnUnequalMscale)] = YarnUnequalMscale,
        [nameof(LiteShaped)] = LiteShaped,
    };
}
