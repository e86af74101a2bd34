namespace Tune.Trainer.Training;

/// <summary>One optimiser step as metrics.jsonl records it.</summary>
public sealed record StepMetrics(int Step, double Loss, double AuxLoss, double LearningRate, double GradNorm, long Tokens,
    double TokensPerSecond, double? EvalLoss = null, double? EvalPerplexity = null);
