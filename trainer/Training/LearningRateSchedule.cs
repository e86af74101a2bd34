using Tune.Trainer.Recipes;

namespace Tune.Trainer.Training;

/// <summary>Linear warm-up to the peak rate, then constant or cosine decay to min_lr_ratio × peak at the last step.</summary>
public sealed class LearningRateSchedule(ScheduleRecipe schedule, double peak, int totalSteps)
{
    /// <summary>The rate for optimiser step <paramref name="step"/> (0-based).</summary>
    public double At(int step)
    {
        if (step < schedule.WarmupSteps) return peak * (step + 1) / schedule.WarmupSteps;
        if (schedule.Kind == ScheduleKind.Constant) return peak;
        int decaySteps = Math.Max(1, totalSteps - schedule.WarmupSteps - 1);
        double progress = Math.Min(1.0, (step - schedule.WarmupSteps) / (double)decaySteps);
        double floor = peak * schedule.MinLrRatio;
        return floor + (peak - floor) * 0.5 * (1 + Math.Cos(Math.PI * progress));
    }
}
