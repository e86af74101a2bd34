namespace Tune.Trainer.Recipes;

/// <summary>ESFT's two expert-relevance scores (scripts/expert/generate_expert_config.py).</summary>
public enum EsftScoreFunction
{
    /// <summary>Share of the task's tokens routed to the expert (ESFT's README example, with top_p 0.2).</summary>
    Token,

    /// <summary>Sum of the gate weights the expert received.</summary>
    Gate,
}
