namespace Tune.Trainer.Recipes;

/// <summary>Fill-in-the-middle for text records, at document level before packing.</summary>
public sealed record FimRecipe
{
    /// <summary>Share of text documents that become FIM documents; DeepSeek-Coder-V2-Lite was pre-trained with 0.5.</summary>
    public double Rate { get; init; } = 0.5;

    /// <summary>Share of the FIM documents laid out suffix-prefix-middle instead of prefix-suffix-middle.</summary>
    public double SpmRate { get; init; }

    public long Seed { get; init; }
}
