namespace Tune.Trainer.Recipes;

/// <summary>AdamW. Defaults: the Coder-V2 paper's betas, no weight decay on LoRA factors, gradient norm clipped at 1.</summary>
public sealed record OptimRecipe
{
    public double Lr { get; init; } = 2e-4;

    public double[] Betas { get; init; } = [0.9, 0.95];

    public double WeightDecay { get; init; }

    public double Eps { get; init; } = 1e-8;

    /// <summary>Largest global gradient norm; 0 turns clipping off.</summary>
    public double GradClip { get; init; } = 1.0;
}
