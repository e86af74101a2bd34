using Tune.Formats;
using Tune.Model;
using Tune.Model.Tokenization;
using Tune.Trainer.Data;
using Tune.Trainer.Recipes;
using Tune.Trainer.Training;

namespace Tune.Trainer;

/// <summary>What a finished run leaves: where the adapter is, and the loss before the first step and after the last.</summary>
public sealed record TrainingResult(string AdapterDirectory, double LossBefore, double LossAfter, IReadOnlyList<StepMetrics> Steps);

/// <summary>
/// `tune train`: a recipe turned into a run. Loads the base (frozen) and the data, attaches fresh adapters seeded by
/// train.seed, trains, and writes the PEFT adapter to output.dir (checkpoints, metrics.jsonl and the resolved recipe
/// beside it).
/// </summary>
public static class TrainingJob
{
    public static async Task<TrainingResult> RunAsync(Recipe recipe, bool resume, TextWriter log, CancellationToken cancel = default)
    {
        if (recipe.Esft.Enabled)
            throw new NotSupportedException("esft.enabled: expert-specialised fine-tuning is not wired into `tune train` yet; " +
                                            "train LoRA on chosen experts with lora.routed_experts: listed");
        TorchRuntime runtime = TorchRuntime.Parse(recipe.Model.Device, recipe.Model.Dtype);
        DeepSeekTokenizer tokenizer = DeepSeekTokenizer.Load(recipe.Model.Path);
        TrainingData data = await TrainingData.LoadAsync(recipe.Data, tokenizer, Environment.CurrentDirectory, cancel);
        log.WriteLine(data.Summary);

        using var checkpoint = CheckpointDirectory.Open(recipe.Model.Path);
        bool Trainable(string name) => recipe.Lora.TrainRouter && name.EndsWith(".mlp.gate.weight", StringComparison.Ordinal);
        using var model = DeepSeekV2ForCausalLM.Load(checkpoint, runtime, Trainable);
        LoraConfig lora = ToLoraConfig(recipe.Lora);
        IReadOnlyList<string> adapted = LoraInjection.Attach(model, lora, recipe.Train.Seed);
        long trainable = model.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
        log.WriteLine($"{runtime}: LoRA r={lora.Rank} on {adapted.Count} projections, {trainable:N0} trainable parameters");

        Directory.CreateDirectory(recipe.Output.Dir);
        AtomicFile.Write(Path.Combine(recipe.Output.Dir, "recipe.yaml"),
            s => s.Write(System.Text.Encoding.UTF8.GetBytes(RecipeLoader.ToYaml(recipe))));
        var trainer = new LoraTrainer(recipe, model, lora, data.Train, data.Eval, log);
        PackedDataset measured = data.Eval ?? data.Train;
        double before = trainer.Evaluate(measured);
        IReadOnlyList<StepMetrics> steps = trainer.Run(resume, cancel);
        double after = trainer.Evaluate(measured);
        PeftAdapter.Save(model, lora, recipe.Output.Dir, recipe.Model.Path);
        log.WriteLine($"{(data.Eval is null ? "train" : "eval")} loss {before:F4} → {after:F4}; adapter in {recipe.Output.Dir}");
        return new TrainingResult(recipe.Output.Dir, before, after, steps);
    }

    public static LoraConfig ToLoraConfig(LoraRecipe r) => new()
    {
        Rank = r.Rank,
        Alpha = r.Alpha,
        Dropout = r.Dropout,
        UseRsLora = r.UseRslora,
        TargetModules = r.TargetModules,
        Dense = r.DenseMlp,
        SharedExperts = r.SharedExperts,
        RoutedExpertsEnabled = r.RoutedExperts != ExpertSelection.None,
        RoutedExperts = r.RoutedExperts == ExpertSelection.Listed
            ? r.RoutedExpertIds.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<int>)kv.Value)
            : null,
    };
}
