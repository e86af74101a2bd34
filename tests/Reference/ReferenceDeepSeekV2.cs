using static Tune.Tests.Reference.ReferenceMath;

namespace Tune.Tests.Reference;

/// <summary>
/// Independent double-precision DeepSeek-V2 forward pass, written from docs/spec deepseek-v2.md (§2, §3) and used
/// by the tests as the oracle for the TorchSharp model. One sequence, no batching, no padding, positions 0..T-1.
/// </summary>
public sealed class ReferenceDeepSeekV2
{
    /// <summary>q_a_layernorm and kv_a_layernorm are built without config.rms_norm_eps (spec §2.3 step 1).</summary>
    const double LatentNormEps = 1e-6;

    /// <summary>Added to the sum of the top-k weights when they are normalised (spec §2.5 step 3).</summary>
    const double NormTopkEps = 1e-20;

    readonly ReferenceConfig c;
    readonly Func<string, double[]> weight;
    readonly Dictionary<string, double[]> loaded = [];
    readonly double[] invFreq;
    readonly double ropeMagnitude;
    readonly double softmaxScale;

    public ReferenceDeepSeekV2(string configJson, Func<string, double[]> weight)
    {
        c = ReferenceConfig.Parse(configJson);
        RejectUnsupported(c);
        this.weight = weight;
        var s = c.RopeScaling;
        invFreq = s is null
            ? RopeInvFreq(c.QkRopeHeadDim, c.RopeTheta)
            : YarnInvFreq(c.QkRopeHeadDim, c.RopeTheta, s.Factor, s.OriginalMaxPositionEmbeddings, s.BetaFast, s.BetaSlow);
        ropeMagnitude = s is null ? 1.0 : YarnMscale(s.Factor, s.Mscale) / YarnMscale(s.Factor, s.MscaleAllDim);
        softmaxScale = SoftmaxScale(c);
    }

    public ReferenceConfig Config => c;

    // ---------------------------------------------------------------- static pieces of the maths (spec §2.3-§2.6)

    /// <summary>Plain RoPE: inv_freq[i] = base^(-2i/dim), i = 0..dim/2-1.</summary>
    public static double[] RopeInvFreq(int dim, double @base)
    {
        var f = new double[dim / 2];
        for (int i = 0; i < f.Length; i++)
            f[i] = Math.Pow(@base, -2.0 * i / dim);
        return f;
    }

    /// <summary>Spec §2.4 correction range: low = max(floor(cd(beta_fast)), 0), high = min(ceil(cd(beta_slow)), dim-1).</summary>
    public static (int Low, int High) YarnCorrectionRange(int dim, double @base, int originalMax, double betaFast, double betaSlow)
    {
        double Cd(double rotations) => dim * Math.Log(originalMax / (2 * Math.PI * rotations)) / (2 * Math.Log(@base));
        return (Math.Max((int)Math.Floor(Cd(betaFast)), 0), Math.Min((int)Math.Ceiling(Cd(betaSlow)), dim - 1));
    }

    /// <summary>Spec §2.4: inv_freq[i] = freq_extra[i]·(1 - ramp[i]) + (freq_extra[i]/s)·ramp[i].</summary>
    public static double[] YarnInvFreq(int dim, double @base, double factor, int originalMax, double betaFast, double betaSlow)
    {
        var extra = RopeInvFreq(dim, @base);
        var (low, high) = YarnCorrectionRange(dim, @base, originalMax, betaFast, betaSlow);
        double span = low == high ? 0.001 : high - low;
        var f = new double[extra.Length];
        for (int i = 0; i < f.Length; i++)
        {
            double ramp = Math.Clamp((i - low) / span, 0.0, 1.0);
            f[i] = extra[i] / factor * ramp + extra[i] * (1 - ramp);
        }
        return f;
    }

    /// <summary>mscale(s, m) = 1 if s ≤ 1, else 0.1·m·ln(s) + 1 (spec §2.4).</summary>
    public static double YarnMscale(double factor, double m) => factor <= 1 ? 1.0 : 0.1 * m * Math.Log(factor) + 1.0;

    /// <summary>q_head_dim^-0.5, × mscale(factor, mscale_all_dim)² when rope_scaling has a non-zero mscale_all_dim (spec §2.3 step 8).</summary>
    public static double SoftmaxScale(ReferenceConfig config)
    {
        double scale = 1.0 / Math.Sqrt(config.QHeadDim);
        if (config.RopeScaling is { MscaleAllDim: not 0.0 } s)
        {
            double m = YarnMscale(s.Factor, s.MscaleAllDim);
            scale *= m * m;
        }
        return scale;
    }

    /// <summary>
    /// Rotates each adjacent pair (x₂ᵢ, x₂ᵢ₊₁) of the checkpoint layout by position·inv_freq[i], scaled by the
    /// YaRN magnitude mscale(s, mscale)/mscale(s, mscale_all_dim). Spec §2.4: the remote code's permute + rotate_half
    /// gives the same q·k.
    /// </summary>
    public static double[] RotateAdjacentPairs(ReadOnlySpan<double> x, int position, double[] invFreq, double magnitude)
    {
        var y = new double[x.Length];
        for (int i = 0; i < x.Length / 2; i++)
        {
            double angle = position * invFreq[i];
            double cos = Math.Cos(angle) * magnitude, sin = Math.Sin(angle) * magnitude;
            y[2 * i] = x[2 * i] * cos - x[2 * i + 1] * sin;
            y[2 * i + 1] = x[2 * i + 1] * cos + x[2 * i] * sin;
        }
        return y;
    }

    /// <summary>
    /// Expert selection on one token's softmax scores (spec §2.5 steps 2-3). Returns the chosen experts, best first,
    /// and their weights.
    /// </summary>
    public static (int[] Experts, double[] Weights) Route(
        double[] scores, int topK, string topkMethod, int nGroup, int topkGroup, bool normTopkProb, double routedScalingFactor)
    {
        double[] candidates = topkMethod switch
        {
            "greedy" => scores,
            "group_limited_greedy" => MaskToBestGroups(scores, nGroup, topkGroup),
            _ => throw new NotSupportedException($"topk_method '{topkMethod}'"),
        };
        int[] experts = TopK(candidates, topK);
        double[] w = experts.Select(e => candidates[e]).ToArray();
        if (topK > 1 && normTopkProb)
        {
            double sum = w.Sum() + NormTopkEps;
            return (experts, w.Select(v => v / sum).ToArray());
        }
        return (experts, w.Select(v => v * routedScalingFactor).ToArray());
    }

    /// <summary>Contiguous groups of E/n_group, scored by their max; experts outside the topk_group best groups get 0.</summary>
    static double[] MaskToBestGroups(double[] scores, int nGroup, int topkGroup)
    {
        if (nGroup <= 0 || scores.Length % nGroup != 0)
            throw new ArgumentException($"{scores.Length} experts cannot form {nGroup} equal groups");
        int size = scores.Length / nGroup;
        var groupScore = new double[nGroup];
        for (int g = 0; g < nGroup; g++)
            groupScore[g] = scores.AsSpan(g * size, size).ToArray().Max();
        var kept = TopK(groupScore, topkGroup).ToHashSet();
        return scores.Select((v, e) => kept.Contains(e / size) ? v : 0.0).ToArray();
    }

    /// <summary>
    /// Expert-level balance loss of one sequence (spec §2.6): alpha · Σ_e f_e·P_e with f_e = count(e)/(T·k/E) and
    /// P_e the mean score. For a single sequence seq_aux true and false give the same value.
    /// </summary>
    public static double SeqAuxLoss(double[][] scores, int[][] selected, int nExperts, double alpha)
    {
        int tokens = scores.Length, k = selected[0].Length;
        var count = new double[nExperts];
        foreach (var chosen in selected)
            foreach (int e in chosen)
                count[e]++;
        double sum = 0;
        for (int e = 0; e < nExperts; e++)
        {
            double f = count[e] / ((double)tokens * k / nExperts);
            double p = scores.Average(s => s[e]);
            sum += f * p;
        }
        return alpha * sum;
    }

    // ---------------------------------------------------------------- the model

    /// <summary>Logits [T][V] by the naive (training) form of MLA, all tokens of a layer at once (spec §2.2, §2.3).</summary>
    public double[][] Forward(int[] ids) => Run(ids, routing: null);

    /// <summary>
    /// Logits [T][V] by the absorbed form (spec §3), decoding one token at a time through every layer against a
    /// cache of the normalised latent and the roped shared key.
    /// </summary>
    public double[][] ForwardAbsorbed(int[] ids)
    {
        var caches = Enumerable.Range(0, c.NumHiddenLayers).Select(_ => new LatentCache()).ToArray();
        var logits = new double[ids.Length][];
        for (int t = 0; t < ids.Length; t++)
        {
            var h = Embed(ids[t]);
            for (int layer = 0; layer < c.NumHiddenLayers; layer++)
            {
                string p = $"model.layers.{layer}.";
                var x = RmsNorm(h, Vector(p + "input_layernorm.weight", c.HiddenSize), c.RmsNormEps);
                AddScaled(h, 1, AbsorbedAttention(p + "self_attn.", x, t, caches[layer]));
                x = RmsNorm(h, Vector(p + "post_attention_layernorm.weight", c.HiddenSize), c.RmsNormEps);
                AddScaled(h, 1, FeedForward(layer, x, routing: null));
            }
            logits[t] = Logits(h);
        }
        return logits;
    }

    /// <summary>Σ over MoE layers of the balance loss of the sequence (spec §2.6), as added to CE in training.</summary>
    public double AuxLoss(int[] ids)
    {
        var routing = Enumerable.Range(0, c.NumHiddenLayers).Select(_ => new List<(double[] Scores, int[] Experts)>()).ToArray();
        Run(ids, routing);
        return Enumerable.Range(0, c.NumHiddenLayers).Where(c.IsMoeLayer).Sum(layer => SeqAuxLoss(
            routing[layer].Select(r => r.Scores).ToArray(), routing[layer].Select(r => r.Experts).ToArray(),
            c.NRoutedExperts!.Value, c.AuxLossAlpha));
    }

    double[][] Run(int[] ids, List<(double[] Scores, int[] Experts)>[]? routing)
    {
        var h = ids.Select(Embed).ToArray();
        for (int layer = 0; layer < c.NumHiddenLayers; layer++)
        {
            string p = $"model.layers.{layer}.";
            var x = h.Select(ht => RmsNorm(ht, Vector(p + "input_layernorm.weight", c.HiddenSize), c.RmsNormEps)).ToArray();
            var attn = Attention(p + "self_attn.", x);
            for (int t = 0; t < h.Length; t++)
            {
                AddScaled(h[t], 1, attn[t]);
                var xt = RmsNorm(h[t], Vector(p + "post_attention_layernorm.weight", c.HiddenSize), c.RmsNormEps);
                AddScaled(h[t], 1, FeedForward(layer, xt, routing?[layer]));
            }
        }
        return h.Select(Logits).ToArray();
    }

    double[] Embed(int id)
    {
        if (id < 0 || id >= c.VocabSize)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"vocab_size is {c.VocabSize}");
        return Weight("model.embed_tokens.weight", c.VocabSize, c.HiddenSize).Row(id).ToArray();
    }

    double[] Logits(double[] h)
    {
        var final = RmsNorm(h, Vector("model.norm.weight", c.HiddenSize), c.RmsNormEps);
        string head = c.TieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight";
        return Weight(head, c.VocabSize, c.HiddenSize).Apply(final);
    }

    // ---------------------------------------------------------------- MLA (spec §2.3, §3)

    int H => c.NumAttentionHeads;

    /// <summary>Per head: q_nope [dn] and the roped q_pe [dr], split from the head-major [H·(dn+dr)] query (spec §2.1).</summary>
    (double[][] Nope, double[][] RopedPe) Query(string p, double[] x, int position)
    {
        int qOut = H * c.QHeadDim;
        double[] q = c.QLoraRank is int rq
            ? Weight(p + "q_b_proj.weight", qOut, rq).Apply(RmsNorm(
                Weight(p + "q_a_proj.weight", rq, c.HiddenSize).Apply(x), Vector(p + "q_a_layernorm.weight", rq), LatentNormEps))
            : Weight(p + "q_proj.weight", qOut, c.HiddenSize).Apply(x);
        var nope = new double[H][];
        var pe = new double[H][];
        for (int h = 0; h < H; h++)
        {
            nope[h] = q.AsSpan(h * c.QHeadDim, c.QkNopeHeadDim).ToArray();
            pe[h] = RotateAdjacentPairs(q.AsSpan(h * c.QHeadDim + c.QkNopeHeadDim, c.QkRopeHeadDim), position, invFreq, ropeMagnitude);
        }
        return (nope, pe);
    }

    /// <summary>kv_a_proj_with_mqa gives [c_kv | k_pe]; returns RMSNorm(c_kv) and the roped k_pe shared by all heads.</summary>
    (double[] Latent, double[] RopedKey) CompressKv(string p, double[] x, int position)
    {
        int r = c.KvLoraRank;
        var kva = Weight(p + "kv_a_proj_with_mqa.weight", r + c.QkRopeHeadDim, c.HiddenSize).Apply(x);
        var latent = RmsNorm(kva.AsSpan(0, r), Vector(p + "kv_a_layernorm.weight", r), LatentNormEps);
        var key = RotateAdjacentPairs(kva.AsSpan(r, c.QkRopeHeadDim), position, invFreq, ropeMagnitude);
        return (latent, key);
    }

    Matrix KvB(string p) => Weight(p + "kv_b_proj.weight", H * (c.QkNopeHeadDim + c.VHeadDim), c.KvLoraRank);

    double[] OutProj(string p, double[] o) => Weight(p + "o_proj.weight", c.HiddenSize, H * c.VHeadDim).Apply(o);

    /// <summary>Naive form: k_nope and v materialised per head from kv_b_proj, causal softmax attention.</summary>
    double[][] Attention(string p, double[][] x)
    {
        int tokens = x.Length, dn = c.QkNopeHeadDim, dv = c.VHeadDim;
        var q = new (double[][] Nope, double[][] RopedPe)[tokens];
        var key = new double[tokens][];
        var kv = new double[tokens][];
        for (int t = 0; t < tokens; t++)
        {
            q[t] = Query(p, x[t], t);
            var (latent, ropedKey) = CompressKv(p, x[t], t);
            key[t] = ropedKey;
            kv[t] = KvB(p).Apply(latent);
        }

        var output = new double[tokens][];
        for (int t = 0; t < tokens; t++)
        {
            var o = new double[H * dv];
            for (int h = 0; h < H; h++)
            {
                int kOff = h * (dn + dv), vOff = kOff + dn;
                var scores = new double[t + 1];
                for (int s = 0; s <= t; s++)
                    scores[s] = (Dot(q[t].Nope[h], kv[s].AsSpan(kOff, dn)) + Dot(q[t].RopedPe[h], key[s])) * softmaxScale;
                var probs = Softmax(scores);
                for (int s = 0; s <= t; s++)
                    AddScaled(o.AsSpan(h * dv, dv), probs[s], kv[s].AsSpan(vOff, dv));
            }
            output[t] = OutProj(p, o);
        }
        return output;
    }

    /// <summary>Cache per layer: normalised latent ĉ [r] and roped shared key k̃_pe [dr] per past token (spec §3).</summary>
    sealed class LatentCache
    {
        public List<double[]> Latent { get; } = [];
        public List<double[]> RopedKey { get; } = [];
    }

    /// <summary>
    /// Absorbed form for the token at <paramref name="position"/>: q_lat_h = W_UK_hᵀ·q_nope_h scores against ĉ,
    /// the probabilities average ĉ, and W_UV_h lifts the result back to v space (spec §3).
    /// </summary>
    double[] AbsorbedAttention(string p, double[] x, int position, LatentCache cache)
    {
        int dn = c.QkNopeHeadDim, dv = c.VHeadDim, r = c.KvLoraRank;
        var (qNope, qPe) = Query(p, x, position);
        var (latent, ropedKey) = CompressKv(p, x, position);
        cache.Latent.Add(latent);
        cache.RopedKey.Add(ropedKey);
        var kvB = KvB(p);

        var o = new double[H * dv];
        for (int h = 0; h < H; h++)
        {
            int ukRow = h * (dn + dv), uvRow = ukRow + dn;
            var qLatent = new double[r];
            for (int j = 0; j < dn; j++)
                AddScaled(qLatent, qNope[h][j], kvB.Row(ukRow + j));

            var scores = new double[cache.Latent.Count];
            for (int s = 0; s < scores.Length; s++)
                scores[s] = (Dot(qLatent, cache.Latent[s]) + Dot(qPe[h], cache.RopedKey[s])) * softmaxScale;
            var probs = Softmax(scores);

            var oLatent = new double[r];
            for (int s = 0; s < scores.Length; s++)
                AddScaled(oLatent, probs[s], cache.Latent[s]);
            for (int j = 0; j < dv; j++)
                o[h * dv + j] = Dot(kvB.Row(uvRow + j), oLatent);
        }
        return OutProj(p, o);
    }

    // ---------------------------------------------------------------- feed-forward (spec §2.2 step 2.4, §2.5)

    /// <summary>down(silu(gate·x) ⊙ up·x) of the given width.</summary>
    double[] Mlp(string p, int width, double[] x)
    {
        var gate = Weight(p + "gate_proj.weight", width, c.HiddenSize).Apply(x);
        var up = Weight(p + "up_proj.weight", width, c.HiddenSize).Apply(x);
        var act = new double[width];
        for (int i = 0; i < width; i++)
            act[i] = Silu(gate[i]) * up[i];
        return Weight(p + "down_proj.weight", c.HiddenSize, width).Apply(act);
    }

    double[] FeedForward(int layer, double[] x, List<(double[] Scores, int[] Experts)>? routing)
    {
        string p = $"model.layers.{layer}.mlp.";
        if (!c.IsMoeLayer(layer))
            return Mlp(p, c.IntermediateSize, x);

        var scores = Softmax(Weight(p + "gate.weight", c.NRoutedExperts!.Value, c.HiddenSize).Apply(x));
        var (experts, weights) = Route(scores, c.NumExpertsPerTok!.Value, c.TopkMethod, c.NGroup ?? 0, c.TopkGroup ?? 0,
            c.NormTopkProb, c.RoutedScalingFactor);
        routing?.Add((scores, experts));

        var y = new double[c.HiddenSize];
        for (int k = 0; k < experts.Length; k++)
            AddScaled(y, weights[k], Mlp($"{p}experts.{experts[k]}.", c.MoeIntermediateSize, x));
        // ONE MLP of width moe_intermediate_size·n_shared_experts, not n separate experts (spec §2.5 step 5).
        if (c.NSharedExperts is int shared and > 0)
            AddScaled(y, 1, Mlp(p + "shared_experts.", c.MoeIntermediateSize * shared, x));
        return y;
    }

    // ---------------------------------------------------------------- weights

    Matrix Weight(string name, int rows, int cols) => new(rows, cols, Load(name, rows * cols, $"[{rows}, {cols}]"));

    double[] Vector(string name, int length) => Load(name, length, $"[{length}]");

    double[] Load(string name, int length, string shape)
    {
        if (!loaded.TryGetValue(name, out var values))
        {
            values = weight(name);
            if (values.Length != length)
                throw new InvalidDataException($"{name}: {values.Length} values, expected shape {shape}");
            loaded[name] = values;
        }
        return values;
    }

    static void RejectUnsupported(ReferenceConfig c)
    {
        if (c.HiddenAct != "silu")
            throw new NotSupportedException($"hidden_act '{c.HiddenAct}': every V2 checkpoint uses silu");
        if (c.AttentionBias)
            throw new NotSupportedException("attention_bias: no released V2 checkpoint has linear biases (spec §2)");
        if (c.RopeScaling is { Type: not "yarn" } s)
            throw new NotSupportedException($"rope_scaling type '{s.Type}': released V2 configs use only yarn (spec §2.4)");
        if (c.NRoutedExperts is null)
            return;
        if (c.ScoringFunc != "softmax")
            throw new NotSupportedException($"scoring_func '{c.ScoringFunc}': the V2 code accepts only softmax (spec §2.5)");
        if (c.TopkMethod == "gready")
            throw new NotSupportedException(
                "topk_method 'gready' is configuration_deepseek.py's misspelt default (spec §1.1); set 'greedy'");
        if (c.TopkMethod is not ("greedy" or "group_limited_greedy"))
            throw new NotSupportedException($"topk_method '{c.TopkMethod}'");
        if (c.NumExpertsPerTok is null)
            throw new InvalidDataException("n_routed_experts is set but num_experts_per_tok is not");
        if (c.TopkMethod == "group_limited_greedy" && (c.NGroup is null || c.TopkGroup is null))
            throw new InvalidDataException("group_limited_greedy needs n_group and topk_group");
    }
}
