namespace Tune.Model;

/// <summary>
/// Which projections get a LoRA adapter and how it scales (PEFT's LoraConfig semantics). Target modules match the
/// last component of a module name (q_proj, kv_a_proj_with_mqa, kv_b_proj, o_proj, q_a_proj, q_b_proj, gate_proj,
/// up_proj, down_proj); the MLP parts below say which of the dense MLP, the shared experts and the routed experts the
/// MLP names apply to.
/// </summary>
public sealed record LoraConfig
{
    public static readonly string[] AttentionModules = ["q_proj", "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"];
    public static readonly string[] MlpModules = ["gate_proj", "up_proj", "down_proj"];

    public int Rank { get; init; } = 8;
    public double Alpha { get; init; } = 16;
    public double Dropout { get; init; }
    public bool UseRsLora { get; init; }
    public IReadOnlyList<string> TargetModules { get; init; } = ["q_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"];
    public bool Dense { get; init; } = true;
    public bool SharedExperts { get; init; } = true;

    /// <summary>Routed experts to adapt: null = all of them; otherwise per layer the chosen expert ids (others none).</summary>
    public IReadOnlyDictionary<int, IReadOnlyList<int>>? RoutedExperts { get; init; }

    public bool RoutedExpertsEnabled { get; init; } = true;

    /// <summary>alpha / r, or alpha / √r with rsLoRA (PEFT's `scaling`).</summary>
    public double Scale => UseRsLora ? Alpha / Math.Sqrt(Rank) : Alpha / Rank;

    public void Validate()
    {
        if (Rank <= 0) throw new ArgumentException($"lora rank must be positive, got {Rank}");
        if (Alpha <= 0) throw new ArgumentException($"lora alpha must be positive, got {Alpha}");
        if (Dropout is < 0 or >= 1) throw new ArgumentException($"lora dropout must be in [0, 1), got {Dropout}");
        string[] unknown = TargetModules.Except(AttentionModules).Except(MlpModules).ToArray();
        if (unknown.Length > 0)
            throw new ArgumentException($"lora target_modules: unknown module(s) {string.Join(", ", unknown)}; " +
                                        $"expected any of {string.Join(", ", AttentionModules.Concat(MlpModules))}");
    }

    /// <summary>Whether the projection named <paramref name="module"/> (e.g. model.layers.3.mlp.experts.5.up_proj) is adapted.</summary>
    public bool Targets(string module)
    {
        string[] parts = module.Split('.');
        if (parts.Length < 4 || parts[0] != "model" || parts[1] != "layers" || !int.TryParse(parts[2], out int layer)) return false;
        if (!TargetModules.Contains(parts[^1])) return false;
        if (parts[3] == "self_attn") return true;
        if (parts[3] != "mlp") return false;
        if (parts.Length == 5) return Dense;
        if (parts[4] == "shared_experts") return SharedExperts;
        if (parts[4] != "experts" || !RoutedExpertsEnabled || !int.TryParse(parts[5], out int expert)) return false;
        return RoutedExperts is null || RoutedExperts.TryGetValue(layer, out IReadOnlyList<int>? chosen) && chosen.Contains(expert);
    }
}
