namespace Tune.Trainer.Recipes;

public enum ScheduleKind
{
    /// <summary>Linear warm-up, then cosine decay to min_lr_ratio × lr at max_steps.</summary>
    Cosine,

    /// <summary>Linear warm-up, then lr until the end.</summary>
    Constant,
}
