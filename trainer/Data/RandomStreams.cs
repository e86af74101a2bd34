namespace Tune.Trainer.Data;

/// <summary>The purposes <see cref="DeterministicRandom.For"/> keeps apart, so that one seed can serve all of them.</summary>
internal static class RandomStreams
{
    public const long TrainFim = 1;
    public const long EvalFim = 2;
    public const long EpochOrder = 3;
    public const long EvalSplit = 4;
    public const long FimExactMatch = 5;
}
