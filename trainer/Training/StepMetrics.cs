namespace Tune.Trainer.Training;

/// <summary>
/// One optimiser step as metrics.jsonl records it. StepSeconds: wall time of the step (forward, backward, gradient
/// exchange, optimiser; not evaluation or checkpointing). CommunicationSeconds: with expert parallelism, per rank, the
/// part of the step spent inside collectives, waiting for slower ranks included.
/// </summary>
public sealed record StepMetrics(int Step, double Loss, double AuxLoss, double LearningRate, double GradNorm, long Tokens,
    double TokensPerSecond, double? EvalLoss = null, double? EvalPerplexity = null, double? StepSeconds = null,
    IReadOnlyList<double>? CommunicationSeconds = null);
