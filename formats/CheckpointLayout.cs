namespace Tune.Formats;

/// <summary>How a tensor is initialised by Hugging Face's _init_weights: norms to one, everything else normal(0, σ).</summary>
public enum TensorInit { Normal, Ones }

public sealed record TensorSpec(string Name, long[] Shape, TensorInit Init)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// Every tensor a DeepSeek-V2 checkpoint holds for a config, with its shape (spec §2.1), in module order. The single
/// list that `tune new`, the loader's checks and the parameter counts of `tune inspect` share.
/// </summary>
public static class CheckpointLayout
{
    public static IReadOnlyList<TensorSpec> Tensors(DeepSeekV2Config c)
    {
        var list = new List<TensorSpec>();
        void Weight(string name, params long[] shape) => list.Add(new TensorSpec(name, shape, TensorInit.Normal));
        void Norm(string name, long size) => list.Add(new TensorSpec(name, [size], TensorInit.Ones));
        void Mlp(string prefix, long intermediate)
        {
            Weight(prefix + ".gate_proj.weight", intermediate, c.HiddenSize);
            Weight(prefix + ".up_proj.weight", intermediate, c.HiddenSize);
            Weight(prefix + ".down_proj.weight", c.HiddenSize, intermediate);
        }

        long d = c.HiddenSize, heads = c.NumAttentionHeads;
        Weight("model.embed_tokens.weight", c.VocabSize, d);
        for (int i = 0; i < c.NumHiddenLayers; i++)
        {
            string p = $"model.layers.{i}";
            Norm(p + ".input_layernorm.weight", d);
            if (c.QLoraRank is { } rq)
            {
                Weight(p + ".self_attn.q_a_proj.weight", rq, d);
                Norm(p + ".self_attn.q_a_layernorm.weight", rq);
                Weight(p + ".self_attn.q_b_proj.weight", heads * c.QHeadDim, rq);
            }
            else
            {
                Weight(p + ".self_attn.q_proj.weight", heads * c.QHeadDim, d);
            }
            Weight(p + ".self_attn.kv_a_proj_with_mqa.weight", c.KvLoraRank + c.QkRopeHeadDim, d);
            Norm(p + ".self_attn.kv_a_layernorm.weight", c.KvLoraRank);
            Weight(p + ".self_attn.kv_b_proj.weight", heads * (c.QkNopeHeadDim + c.VHeadDim), c.KvLoraRank);
            Weight(p + ".self_attn.o_proj.weight", d, heads * c.VHeadDim);
            Norm(p + ".post_attention_layernorm.weight", d);
            if (c.IsMoeLayer(i))
            {
                int experts = c.NRoutedExperts!.Value;
                Weight(p + ".mlp.gate.weight", experts, d);
                for (int e = 0; e < experts; e++) Mlp($"{p}.mlp.experts.{e}", c.MoeIntermediateSize);
                if (c.NSharedExperts > 0) Mlp(p + ".mlp.shared_experts", (long)c.MoeIntermediateSize * c.NSharedExperts);
            }
            else
            {
                Mlp(p + ".mlp", c.IntermediateSize);
            }
        }
        Norm("model.norm.weight", d);
        if (!c.TieWordEmbeddings) Weight("lm_head.weight", c.VocabSize, d);
        return list;
    }

    public static long ParameterCount(DeepSeekV2Config c) => Tensors(c).Sum(t => t.ElementCount);

    /// <summary>
    /// Parameters used per token: everything except the embedding and the routed experts a token is not sent to
    /// (the convention of spec §1.4: embedding excluded, lm_head included).
    /// </summary>
    public static long ActiveParameterCount(DeepSeekV2Config c)
    {
        long inactiveExperts = 0;
        if (c.NRoutedExperts is { } experts)
        {
            long perExpert = 3L * c.MoeIntermediateSize * c.HiddenSize;
            int moeLayers = Enumerable.Range(0, c.NumHiddenLayers).Count(c.IsMoeLayer);
            inactiveExperts = moeLayers * (experts - c.NumExpertsPerTok) * perExpert;
        }
        long embedding = (long)c.VocabSize * c.HiddenSize;
        return ParameterCount(c) - embedding - inactiveExperts;
    }
}
