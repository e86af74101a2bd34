namespace Tune.Trainer.Recipes;

/// <summary>The loop: batch, steps, memory savers, cadence of logs, evaluation and checkpoints.</summary>
public sealed record TrainRecipe
{
    /// <summary>Rows per micro-batch.</summary>
    public int BatchSize { get; init; } = 1;

    /// <summary>Micro-batches per optimiser step.</summary>
    public int GradAccum { get; init; } = 1;

    /// <summary>Optimiser steps.</summary>
    public int MaxSteps { get; init; } = 1000;

    /// <summary>Recompute each decoder layer's activations in backward instead of keeping them.</summary>
    public bool GradCheckpointing { get; init; }

    /// <summary>Weight of the MoE balance loss; unset takes aux_loss_alpha from the checkpoint's config.json.</summary>
    public double? AuxLossCoef { get; init; }

    public long Seed { get; init; }

    public int LogEvery { get; init; } = 10;

    /// <summary>Steps between evaluations; 0 evaluates only at the end.</summary>
    public int EvalEvery { get; init; } = 100;

    /// <summary>Steps between checkpoints; 0 saves only at the end.</summary>
    public int SaveEvery { get; init; } = 100;

    /// <summary>Checkpoints kept; 0 keeps all.</summary>
    public int KeepLast { get; init; } = 3;

    /// <summary>Held-out text documents whose FIM exact match is measured before and after training; 0 measures none.</summary>
    public int FimExactMatch { get; init; }
}
