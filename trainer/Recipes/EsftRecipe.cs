namespace Tune.Trainer.Recipes;

/// <summary>
/// Expert-specialised fine-tuning (deepseek-ai/ESFT): train only the routed experts most used by the task's data.
/// Per layer, experts are taken in order of score until their cumulative share reaches <see cref="TopP"/>.
/// </summary>
public sealed record EsftRecipe
{
    public bool Enabled { get; init; }

    /// <summary>The expert scores of the task data, as <c>tune experts score</c> writes them.</summary>
    public string Scores { get; init; } = "";

    public EsftScoreFunction ScoreFunction { get; init; } = EsftScoreFunction.Token;

    public double TopP { get; init; } = 0.2;

    public EsftMode Mode { get; init; } = EsftMode.Full;
}
