namespace Tune.Trainer.Recipes;

/// <summary>How the experts ESFT selects are trained.</summary>
public enum EsftMode
{
    /// <summary>Their weights in full, as ESFT does (everything else frozen unless lora.target_modules adds adapters elsewhere).</summary>
    Full,

    /// <summary>LoRA adapters on their projections only.</summary>
    Lora,
}
