using Tune.Formats;

namespace Tune.Convert;

/// <summary>
/// Where llama.cpp's deepseek2 runtime (or its converter) would compute something other than the Hugging Face
/// model, what this converter writes instead so that llama.cpp computes the HF model exactly, and what no file can fix
/// (gguf.md §2.7, docs/convert.md). Everything else is written exactly as llama.cpp's converter writes it.
/// </summary>
public sealed record LlamaCppCompatibility
{
    /// <summary>deepseek2.expert_weights_scale.</summary>
    public required float ExpertWeightsScale { get; init; }

    /// <summary>Whether deepseek2.expert_weights_norm = true is written (the key is omitted otherwise).</summary>
    public required bool ExpertWeightsNorm { get; init; }

    /// <summary>MoE layers get one all-zero shared expert: llama.cpp cannot load MoE layers without one.</summary>
    public required bool ZeroSharedExpert { get; init; }

    /// <summary>deepseek2.expert_group_count / expert_group_used_count; null writes neither.</summary>
    public required (uint Groups, uint Used)? ExpertGroups { get; init; }

    /// <summary>
    /// Factors for the q_nope and q_pe rows of q_proj (or q_b_proj) that turn llama.cpp's attention scale and rope
    /// magnitude into HF's (1 unless the config has mscale ≠ mscale_all_dim or no mscale_all_dim under YaRN).
    /// </summary>
    public required (double Nope, double Rope) QueryScale { get; init; }

    /// <summary>deepseek2.attention.q_lora_rank; null omits the key (llama.cpp then treats the model as "Lite").</summary>
    public required uint? QLoraRank { get; init; }

    /// <summary>What is written differently from llama.cpp's converter, and why.</summary>
    public required IReadOnlyList<string> Notes { get; init; }

    /// <summary>What llama.cpp will compute differently from the HF model whatever the file says.</summary>
    public required IReadOnlyList<string> Warnings { get; init; }

    public bool ScalesQuery => Math.Abs(QueryScale.Nope - 1) > ScaleTolerance || Math.Abs(QueryScale.Rope - 1) > ScaleTolerance;

    // Below this the two runtimes' float32 roundings of the same scale differ, not their formulas; leaving the weights
    // untouched keeps same-type conversions byte-exact.
    private const double ScaleTolerance = 1e-6;

    // llama.cpp reads q_lora_rank as required unless the layer count looks like a "Lite" model (deepseek2.cpp).
    private static bool LooksLite(DeepSeekV2Config c) =>
        c.NumHiddenLayers is 26 or 27 || (c.NumHiddenLayers == 48 && c.VocabSize == 128256);

    public static LlamaCppCompatibility For(DeepSeekV2Config c)
    {
        var notes = new List<string>();
        var warnings = new List<string>();
        bool moe = c.NRoutedExperts is not null;

        if (moe && Enumerable.Range(0, c.NumHiddenLayers).Any(l => l >= c.FirstKDenseReplace && !c.IsMoeLayer(l)))
            throw new FormatException($"config.json: moe_layer_freq: {c.MoeLayerFreq} puts dense layers between MoE layers, " +
                                      "which GGUF deepseek2 cannot describe (only leading dense layers)");

        // HF V2 normalises the top-k weights only for k > 1, and then ignores routed_scaling_factor; llama.cpp
        // normalises whenever the flag is set and always multiplies by the scale.
        bool normalise = moe && c.NormTopkProb && c.NumExpertsPerTok > 1;
        float scale = normalise ? 1.0f : (float)c.RoutedScalingFactor;
        if (normalise && c.RoutedScalingFactor != 1.0)
            notes.Add($"norm_topk_prob with routed_scaling_factor {c.RoutedScalingFactor}: the HF model ignores the factor when it " +
                      "normalises, so expert_weights_scale is 1.0 (llama.cpp's converter writes the factor, which llama.cpp then applies)");
        if (moe && c.NormTopkProb && c.NumExpertsPerTok == 1)
            notes.Add("norm_topk_prob with one expert per token: the HF model does not normalise then, so expert_weights_norm is not written");

        bool zeroShared = moe && c.NSharedExperts == 0;
        if (zeroShared)
            notes.Add("no shared experts: llama.cpp cannot load MoE layers without one, so each MoE layer gets one all-zero shared expert (exact)");

        (uint, uint)? groups = null;
        if (c.NGroup is { } nGroup && c.TopkGroup is { } topkGroup)
        {
            int groupSize = c.NRoutedExperts is { } e && nGroup > 0 ? e / nGroup : 0;
            bool limits = c.TopkMethod == "group_limited_greedy" && topkGroup < nGroup && groupSize > 1;
            groups = limits ? ((uint)nGroup, (uint)topkGroup) : (1u, 1u);
            if (!limits && nGroup > 1)
                notes.Add($"n_group {nGroup}, topk_group {topkGroup} do not limit routing in the HF model ({c.TopkMethod}); " +
                          "expert_group_count 1 is written so llama.cpp does not group either");
            if (limits)
                warnings.Add($"group_limited_greedy ({topkGroup} of {nGroup} groups): llama.cpp ranks expert groups by the sum of each group's " +
                             "top-2 scores, the HF DeepSeek-V2 model by the group's best score; tokens where the two rules pick different " +
                             "groups are routed differently and no GGUF key can change that (DeepSeek-V2 236B, Coder-V2 236B; not the Lite models)");
        }

        if (c.RmsNormEps != 1e-6)
            warnings.Add($"rms_norm_eps {c.RmsNormEps}: llama.cpp also uses it for q_a_layernorm and kv_a_layernorm, where the HF model uses 1e-6");
        if (c.RopeScaling is { } y && (y.BetaFast != 32 || y.BetaSlow != 1))
            warnings.Add($"YaRN beta_fast {y.BetaFast}, beta_slow {y.BetaSlow}: llama.cpp's deepseek2 loader always uses 32 and 1, so the rope frequencies differ");

        (double nope, double rope) = QueryScaleFor(c);
        if (Math.Abs(nope - 1) > ScaleTolerance || Math.Abs(rope - 1) > ScaleTolerance)
            notes.Add($"YaRN mscale {c.RopeScaling!.Mscale} with mscale_all_dim {c.RopeScaling.MscaleAllDim}: llama.cpp assumes they are equal; " +
                      $"the q_nope rows of the query projection are scaled by {nope:G6} and the q_pe rows by {rope:G6} so attention matches");

        uint? qLora = c.QLoraRank is { } rq ? (uint)rq : LooksLite(c) ? null : 0u;
        if (c.QLoraRank is null && qLora == 0)
            notes.Add($"q_lora_rank is null and the model has {c.NumHiddenLayers} layers: attention.q_lora_rank = 0 is written " +
                      "(llama.cpp requires the key unless the layer count is a Lite model's)");

        return new LlamaCppCompatibility
        {
            ExpertWeightsScale = scale,
            ExpertWeightsNorm = normalise,
            ZeroSharedExpert = zeroShared,
            ExpertGroups = groups,
            QueryScale = (nope, rope),
            QLoraRank = qLora,
            Notes = notes,
            Warnings = warnings,
        };
    }

    /// <summary>
    /// HF: scores = (q_nope·k_nope + c²·q_pe·k_pe)·s with s = q_head_dim^-½·mscale(f, mscale_all_dim)² and the cos/sin
    /// factor c = mscale(f, mscale)/mscale(f, mscale_all_dim). llama.cpp: (q_nope·k_nope + r²·q_pe·k_pe)·kq with its
    /// own kq_scale and rope magnitude r, computed here in float32 as llama-context.cpp and deepseek2.cpp do.
    /// </summary>
    private static (double Nope, double Rope) QueryScaleFor(DeepSeekV2Config c)
    {
        if (c.RopeScaling is not { } y) return (1, 1);
        double Mscale(double f, double m) => f <= 1 ? 1 : 0.1 * m * Math.Log(f) + 1;
        double hfScale = y.MscaleAllDim != 0 ? Mscale(y.Factor, y.MscaleAllDim) * Mscale(y.Factor, y.MscaleAllDim) : 1;
        double cosSin = Mscale(y.Factor, y.Mscale) / Mscale(y.Factor, y.MscaleAllDim);

        float factor = (float)y.Factor, freqScale = 1.0f / factor;
        float logMul = y.MscaleAllDim != 0 ? (float)(0.1 * y.MscaleAllDim) / 0.1f : 0f;
        float GetMscale(float f, float m) => f <= 1.0f ? 1.0f : 0.1f * m * MathF.Log(f) + 1.0f;
        float attnFactor = logMul != 0
            ? GetMscale(factor, logMul != 1.0f ? logMul : 1.0f) / GetMscale(factor, logMul)
            : GetMscale(factor, 1.0f);
        attnFactor *= 1.0f / (1.0f + 0.1f * MathF.Log(factor));
        float ropeMagnitude = attnFactor * (1.0f + 0.1f * MathF.Log(1.0f / freqScale));
        float kqMscale = ropeMagnitude * (1.0f + 0.1f * logMul * MathF.Log(1.0f / freqScale));
        double llamaScale = (double)kqMscale * kqMscale;
        double r2 = (double)ropeMagnitude * ropeMagnitude;
        return (hfScale / llamaScale, hfScale * cosSin * cosSin / (llamaScale * r2));
    }
}
