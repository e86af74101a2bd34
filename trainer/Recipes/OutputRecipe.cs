namespace Tune.Trainer.Recipes;

/// <summary>Where checkpoints, the adapter and logs go.</summary>
public sealed record OutputRecipe
{
    /// <summary>Empty means out/&lt;recipe file name without extension&gt;, relative to the working directory.</summary>
    public string Dir { get; init; } = "";
}
