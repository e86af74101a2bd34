namespace Tune.Trainer.Recipes;

/// <summary>Which routed experts get LoRA adapters on their projections.</summary>
public enum ExpertSelection
{
    All,
    None,

    /// <summary>The experts <see cref="LoraRecipe.RoutedExpertIds"/> lists, per layer.</summary>
    Listed,
}
