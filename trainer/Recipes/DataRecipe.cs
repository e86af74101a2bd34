namespace Tune.Trainer.Recipes;

/// <summary>What the model trains on and how documents become rows.</summary>
public sealed record DataRecipe
{
    /// <summary>The held-out share when no eval source is given (ESFT's 98/2 split).</summary>
    public const double DefaultEvalFraction = 0.02;

    public DataSourceRecipe[] Train { get; init; } = [];

    /// <summary>Separate evaluation data; when given, no share of the training data is held out.</summary>
    public DataSourceRecipe[] Eval { get; init; } = [];

    /// <summary>Share of training documents held out for evaluation; unset means <see cref="DefaultEvalFraction"/> without eval sources.</summary>
    public double? EvalFraction { get; init; }

    public int SeqLen { get; init; } = 4096;

    public FimRecipe Fim { get; init; } = new();

    /// <summary>Pack documents end to end into full rows (each attends only to itself), or one document per padded row.</summary>
    public bool Pack { get; init; } = true;

    public long ShuffleSeed { get; init; }

    public double EvalFractionOrDefault() => EvalFraction ?? (Eval.Length == 0 ? DefaultEvalFraction : 0);
}
