namespace Tune.Trainer.Esft;

/// <summary>One MoE layer's expert scores, each normalised to sum to 1 over the layer's routed experts.</summary>
public sealed record LayerExpertScores(double[] Gate, double[] Token);
