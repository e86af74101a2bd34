using System.Globalization;
using Tune.Trainer.Data;

namespace Tune.Trainer.Recipes;

/// <summary>The ranges and combinations YAML types cannot express. Collects every problem, by dotted key.</summary>
internal sealed class RecipeValidator
{
    private readonly List<(string Key, string Message)> _problems = [];

    public static List<(string Key, string Message)> Validate(Recipe recipe)
    {
        var validator = new RecipeValidator();
        validator.Model(recipe.Model);
        validator.Lora(recipe.Lora);
        validator.Esft(recipe.Esft, recipe.Lora);
        validator.Data(recipe.Data);
        validator.Optim(recipe.Optim);
        validator.Schedule(recipe.Schedule, recipe.Train);
        validator.Train(recipe.Train);
        validator.FimExactMatch(recipe.Train, recipe.Data);
        validator.Check(recipe.Output.Dir.Length > 0, "output.dir", "required");
        return validator._problems;
    }

    private void Model(ModelRecipe model)
    {
        Check(model.Path.Length > 0, "model.path", "required: the Hugging Face checkpoint directory to train");
        Check(ModelRecipe.DTypes.Contains(model.Dtype), "model.dtype", $"\"{model.Dtype}\" is not one of {string.Join(", ", ModelRecipe.DTypes)}");
        bool device = model.Device is "auto" or "cpu" or "cuda"
            || (model.Device.StartsWith("cuda:", StringComparison.Ordinal)
                && int.TryParse(model.Device.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out _));
        Check(device, "model.device", $"\"{model.Device}\" is not auto, cpu, cuda or cuda:N");
    }

    private void Lora(LoraRecipe lora)
    {
        Check(lora.Rank >= 1, "lora.rank", $"must be at least 1, got {lora.Rank}");
        Check(lora.Alpha > 0 && double.IsFinite(lora.Alpha), "lora.alpha", $"must be positive, got {Number(lora.Alpha)}");
        Check(lora.Dropout is >= 0 and < 1, "lora.dropout", $"must be in [0, 1), got {Number(lora.Dropout)}");
        for (int i = 0; i < lora.TargetModules.Length; i++)
        {
            string module = lora.TargetModules[i];
            Check(LoraRecipe.KnownModules.Contains(module), $"lora.target_modules.{i}",
                $"\"{module}\" is not a DeepSeek-V2 projection ({string.Join(", ", LoraRecipe.KnownModules)})");
            Check(Array.IndexOf(lora.TargetModules, module) == i, $"lora.target_modules.{i}", $"\"{module}\" is listed twice");
        }
        Defined(lora.RoutedExperts, "lora.routed_experts");
        if (lora.RoutedExperts == ExpertSelection.Listed)
            Check(lora.RoutedExpertIds.Count > 0, "lora.routed_expert_ids", "routed_experts: listed needs the experts, e.g. {1: [0, 5], 2: [3]}");
        else
            Check(lora.RoutedExpertIds.Count == 0, "lora.routed_expert_ids", "given, but lora.routed_experts is not listed");
        foreach (var (layer, experts) in lora.RoutedExpertIds)
        {
            Check(layer >= 0, $"lora.routed_expert_ids.{layer}", "layer indices start at 0");
            Check(experts.Length > 0 && experts.All(e => e >= 0) && experts.Distinct().Count() == experts.Length,
                $"lora.routed_expert_ids.{layer}", "needs distinct expert ids of 0 or more");
        }
    }

    private void Esft(EsftRecipe esft, LoraRecipe lora)
    {
        Defined(esft.Mode, "esft.mode");
        Defined(esft.ScoreFunction, "esft.score_function");
        Check(esft.TopP is > 0 and <= 1, "esft.top_p", $"must be in (0, 1], got {Number(esft.TopP)}");
        bool trainsSomething = lora.TargetModules.Length > 0 || lora.TrainRouter || (esft.Enabled && esft.Mode == EsftMode.Full);
        Check(trainsSomething, "lora.target_modules", "empty, so nothing would train (only pure ESFT, esft.mode: full, may leave it empty)");
        if (!esft.Enabled) return;
        Check(esft.Scores.Length > 0, "esft.scores", "required when esft.enabled: the file `tune experts score` writes");
        Check(lora.RoutedExperts != ExpertSelection.Listed, "lora.routed_experts", "listed conflicts with esft.enabled, which selects the experts");
    }

    private void Data(DataRecipe data)
    {
        Check(data.Train.Length > 0, "data.train", "needs at least one source: - {path: ..., kind: text}");
        Sources(data.Train, "data.train");
        Sources(data.Eval, "data.eval");
        if (data.EvalFraction is { } fraction)
        {
            Check(fraction is >= 0 and < 1, "data.eval_fraction", $"must be in [0, 1), got {Number(fraction)}");
            Check(data.Eval.Length == 0 || fraction == 0, "data.eval_fraction", "give either data.eval sources or a fraction of data.train, not both");
        }
        Check(data.SeqLen is >= 2 and <= 1 << 20, "data.seq_len", $"must be in [2, {1 << 20}], got {data.SeqLen}");
        Check(data.Fim.Rate is >= 0 and <= 1, "data.fim.rate", $"must be in [0, 1], got {Number(data.Fim.Rate)}");
        Check(data.Fim.SpmRate is >= 0 and <= 1, "data.fim.spm_rate", $"must be in [0, 1], got {Number(data.Fim.SpmRate)}");
    }

    private void Sources(DataSourceRecipe[] sources, string key)
    {
        for (int i = 0; i < sources.Length; i++)
        {
            DataSourceRecipe source = sources[i];
            string at = $"{key}.{i}";
            Check(source.Path.Length > 0, $"{at}.path", "required");
            Defined(source.Kind, $"{at}.kind");
            Defined(source.Format, $"{at}.format");
            Check(source.Format != SourceFormat.Files || source.Kind == RecordKind.Text, $"{at}.kind", "a directory of source files holds text records; use format: jsonl or parquet for other kinds");
            Check(source.TextField.Length > 0, $"{at}.text_field", "required");
            Globs(source.Include, $"{at}.include");
            Globs(source.Exclude, $"{at}.exclude");
        }
    }

    private void Globs(string[] patterns, string key)
    {
        for (int i = 0; i < patterns.Length; i++)
        {
            try { _ = new Glob(patterns[i]); }
            catch (FormatException e) { _problems.Add(($"{key}.{i}", e.Message)); }
        }
    }

    private void Optim(OptimRecipe optim)
    {
        Check(optim.Lr > 0 && double.IsFinite(optim.Lr), "optim.lr", $"must be positive, got {Number(optim.Lr)}");
        Check(optim.Betas.Length == 2 && optim.Betas.All(b => b is >= 0 and < 1), "optim.betas",
            $"needs two numbers in [0, 1), got [{string.Join(", ", optim.Betas.Select(Number))}]");
        Check(optim.WeightDecay >= 0 && double.IsFinite(optim.WeightDecay), "optim.weight_decay", $"must be 0 or more, got {Number(optim.WeightDecay)}");
        Check(optim.Eps > 0 && double.IsFinite(optim.Eps), "optim.eps", $"must be positive, got {Number(optim.Eps)}");
        Check(optim.GradClip >= 0 && double.IsFinite(optim.GradClip), "optim.grad_clip", $"must be 0 (off) or more, got {Number(optim.GradClip)}");
    }

    private void Schedule(ScheduleRecipe schedule, TrainRecipe train)
    {
        Defined(schedule.Kind, "schedule.kind");
        Check(schedule.WarmupSteps >= 0, "schedule.warmup_steps", $"must be 0 or more, got {schedule.WarmupSteps}");
        Check(schedule.WarmupSteps <= train.MaxSteps, "schedule.warmup_steps", $"{schedule.WarmupSteps} is more than train.max_steps ({train.MaxSteps})");
        Check(schedule.MinLrRatio is >= 0 and <= 1, "schedule.min_lr_ratio", $"must be in [0, 1], got {Number(schedule.MinLrRatio)}");
    }

    private void Train(TrainRecipe train)
    {
        Check(train.BatchSize >= 1, "train.batch_size", $"must be at least 1, got {train.BatchSize}");
        Check(train.GradAccum >= 1, "train.grad_accum", $"must be at least 1, got {train.GradAccum}");
        Check(train.MaxSteps >= 1, "train.max_steps", $"must be at least 1, got {train.MaxSteps}");
        if (train.AuxLossCoef is { } aux) Check(aux >= 0 && double.IsFinite(aux), "train.aux_loss_coef", $"must be 0 or more, got {Number(aux)}");
        Check(train.LogEvery >= 1, "train.log_every", $"must be at least 1, got {train.LogEvery}");
        Check(train.EvalEvery >= 0, "train.eval_every", $"must be 0 (only at the end) or more, got {train.EvalEvery}");
        Check(train.SaveEvery >= 0, "train.save_every", $"must be 0 (only at the end) or more, got {train.SaveEvery}");
        Check(train.KeepLast >= 0, "train.keep_last", $"must be 0 (keep all) or more, got {train.KeepLast}");
    }

    private void FimExactMatch(TrainRecipe train, DataRecipe data)
    {
        Check(train.FimExactMatch >= 0, "train.fim_exact_match", $"must be 0 (off) or more, got {train.FimExactMatch}");
        if (train.FimExactMatch > 0)
            Check(data.Eval.Length > 0 || data.EvalFractionOrDefault() > 0, "train.fim_exact_match",
                "measures held-out documents, but data holds none out; give data.eval or a data.eval_fraction above 0");
    }

    private void Defined<T>(T value, string key) where T : struct, Enum =>
        Check(Enum.IsDefined(value), key, $"{value} is not {RecipeSchema.Describe(typeof(T))}");

    private void Check(bool ok, string key, string message)
    {
        if (!ok) _problems.Add((key, message));
    }

    private static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
