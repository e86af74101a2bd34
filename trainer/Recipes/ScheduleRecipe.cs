namespace Tune.Trainer.Recipes;

/// <summary>The learning-rate schedule over optimiser steps.</summary>
public sealed record ScheduleRecipe
{
    public ScheduleKind Kind { get; init; } = ScheduleKind.Cosine;

    public int WarmupSteps { get; init; } = 10;

    /// <summary>Where cosine decay ends, as a share of lr (the Coder-V2 paper decays to 10%).</summary>
    public double MinLrRatio { get; init; } = 0.1;
}
