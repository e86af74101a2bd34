namespace Tune.Trainer.Recipes;

/// <summary>
/// LoRA adapters, in PEFT's terms (adapter_config.json): <c>W x + (alpha / r) B A dropout(x)</c>, or
/// <c>alpha / sqrt(r)</c> with rsLoRA. Modules are named as in the Hugging Face checkpoint.
/// </summary>
public sealed record LoraRecipe
{
    /// <summary>Every linear projection of a DeepSeek-V2 layer. q_proj exists without q_lora_rank (the Lite models), q_a_proj/q_b_proj with it.</summary>
    public static readonly string[] KnownModules =
        ["q_proj", "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    public int Rank { get; init; } = 16;

    public double Alpha { get; init; } = 32;

    public double Dropout { get; init; } = 0.05;

    public bool UseRslora { get; init; }

    /// <summary>Projection names to adapt; those a checkpoint does not have (q_proj or q_a/q_b) are skipped.</summary>
    public string[] TargetModules { get; init; } = [.. KnownModules];

    /// <summary>Whether gate/up/down_proj of the dense MLP layers (layer 0 of Lite) are adapted, when listed in target_modules.</summary>
    public bool DenseMlp { get; init; } = true;

    /// <summary>Whether the shared experts' gate/up/down_proj are adapted, when listed in target_modules.</summary>
    public bool SharedExperts { get; init; } = true;

    /// <summary>Which routed experts' gate/up/down_proj are adapted, when listed in target_modules.</summary>
    public ExpertSelection RoutedExperts { get; init; } = ExpertSelection.All;

    /// <summary>Layer index to expert ids, for <c>routed_experts: listed</c>.</summary>
    public Dictionary<int, int[]> RoutedExpertIds { get; init; } = [];

    /// <summary>
    /// Train the router (mlp.gate.weight) in full. It is a bare parameter, not a Linear, so it cannot take LoRA;
    /// frozen by default, as LLaMA-Factory and Unsloth leave it.
    /// </summary>
    public bool TrainRouter { get; init; }
}
