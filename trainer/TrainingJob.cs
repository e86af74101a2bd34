using Tune.Formats;
using Tune.Model;
using Tune.Model.Distributed;
using Tune.Model.Tokenization;
using Tune.Trainer.Data;
using Tune.Trainer.Esft;
using Tune.Trainer.Parallel;
using Tune.Trainer.Recipes;
using Tune.Trainer.Training;

namespace Tune.Trainer;

/// <summary>
/// What a finished run leaves: where the adapter is, and the loss (and, with train.fim_exact_match, the FIM exact
/// match) before the first step and after the last.
/// </summary>
public sealed record TrainingResult(string AdapterDirectory, double LossBefore, double LossAfter, IReadOnlyList<StepMetrics> Steps,
    FimExactMatchScore? FimBefore = null, FimExactMatchScore? FimAfter = null);

/// <summary>
/// `tune train`: a recipe turned into a run. Loads the base (frozen) and the data, attaches fresh adapters seeded by
/// train.seed, trains, and writes the PEFT adapter to output.dir (checkpoints, metrics.jsonl and the resolved recipe
/// beside it). With esft.enabled the routed experts to train come from the scores file; in full mode their weights
/// train themselves and are written as esft_experts.safetensors + expert_cfg.json.
/// Given the collectives of more than one rank (mpirun), it is one rank of an expert-parallel run: the model is loaded
/// with this rank's block of routed experts, train.batch_size is per rank, only rank 0 logs and writes the outputs, and
/// the adapter and ESFT expert weights it writes are gathered from all ranks into the files one process with batch
/// ranks × batch_size writes.
/// </summary>
public static class TrainingJob
{
    public static async Task<TrainingResult> RunAsync(Recipe recipe, bool resume, TextWriter log, CancellationToken cancel = default,
        ICollectives? collectives = null)
    {
        bool parallel = collectives is { Size: > 1 };
        bool leader = collectives is null || collectives.Rank == 0;
        if (!leader) log = TextWriter.Null;
        TorchRuntime runtime = TorchRuntime.Parse(recipe.Model.Device, recipe.Model.Dtype);
        DeepSeekTokenizer tokenizer = DeepSeekTokenizer.Load(recipe.Model.Path);
        TrainingData data = await TrainingData.LoadAsync(recipe.Data, tokenizer, Environment.CurrentDirectory, cancel);
        log.WriteLine(data.Summary);

        using var checkpoint = CheckpointDirectory.Open(recipe.Model.Path);
        ExpertConfig? esft = recipe.Esft.Enabled ? SelectExperts(recipe.Esft, checkpoint.Config, log) : null;
        ExpertConfig? fullExperts = recipe.Esft.Mode == EsftMode.Full ? esft : null;
        if (parallel && recipe.Train.FimExactMatch > 0)
            throw new ArgumentException("train.fim_exact_match: generation does not run expert-parallel yet; set it to 0, or train in one process");
        // Timed, so that every step reports the share of it spent communicating.
        TimedCollectives? timed = parallel ? new TimedCollectives(collectives!) : null;
        ExpertSharding? sharding = timed is null ? null : ExpertSharding.For(timed, checkpoint.Config);
        // Each rank trains, checkpoints and restores the selected experts it holds; the output gathers them all.
        ExpertConfig? heldExperts = sharding is null ? fullExperts : fullExperts?.HeldBy(sharding.Owns);
        HashSet<string> fullWeights = fullExperts is null ? [] : EsftExpertWeights.TensorNames(fullExperts).ToHashSet(StringComparer.Ordinal);
        bool Trainable(string name) => recipe.Lora.TrainRouter && name.EndsWith(".mlp.gate.weight", StringComparison.Ordinal)
                                       || fullWeights.Contains(name);
        using var model = DeepSeekV2ForCausalLM.Load(checkpoint, runtime, Trainable, sharding);
        LoraConfig lora = WithEsft(ToLoraConfig(recipe.Lora), recipe, esft);
        // Pure ESFT (full mode) or a router-only run (train_router, no target_modules) attaches no LoRA at all.
        IReadOnlyList<string> adapted = lora.TargetModules.Count > 0 ? LoraInjection.Attach(model, lora, recipe.Train.Seed) : [];
        long trainable = model.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
        string experts = fullExperts is null ? "" : $", {fullExperts.Count} routed experts in full";
        string placement = sharding is null ? "" : $"; rank 0 of {sharding.Collectives.Size} ({sharding.Collectives.Description}), " +
                                                   $"{sharding.PerRank} routed experts per rank, {recipe.Train.BatchSize} row(s) per rank and micro-batch";
        log.WriteLine($"{runtime}: LoRA r={lora.Rank} on {adapted.Count} projections{experts}, {trainable:N0} trainable parameters{placement}");

        Directory.CreateDirectory(recipe.Output.Dir);
        if (leader)
        {
            AtomicFile.Write(Path.Combine(recipe.Output.Dir, "recipe.yaml"),
                s => s.Write(System.Text.Encoding.UTF8.GetBytes(RecipeLoader.ToYaml(recipe))));
            esft?.Save(Path.Combine(recipe.Output.Dir, ExpertConfig.FileName));
        }
        IReadOnlyList<FimCase> fimCases = await FimCasesAsync(recipe, data, cancel);
        var trainer = new LoraTrainer(recipe, model, lora, data.Train, data.Eval, log, heldExperts, timed);
        PackedDataset measured = data.Eval ?? data.Train;
        // Every rank evaluates (the sharded layers need all of them) the same rows, so every rank gets the same loss.
        double before = trainer.Evaluate(measured);
        FimExactMatchScore? fimBefore = fimCases.Count > 0 ? FimExactMatch.Measure(model, tokenizer, fimCases, cancel) : null;
        IReadOnlyList<StepMetrics> steps = trainer.Run(resume, cancel);
        if (leader) LossCurve.Write(Path.Combine(recipe.Output.Dir, "loss_curve.png"), trainer.MetricsPath);
        double after = trainer.Evaluate(measured);
        FimExactMatchScore? fimAfter = fimCases.Count > 0 ? FimExactMatch.Measure(model, tokenizer, fimCases, cancel) : null;
        // The same on every rank (the gathering is collective): a rank's own share of adapters may be empty.
        if (lora.TargetModules.Count > 0 || recipe.Lora.TrainRouter)
        {
            if (sharding is null) PeftAdapter.Save(model, lora, recipe.Output.Dir, recipe.Model.Path);
            else GatheredAdapter.Save(model, lora, sharding, recipe.Output.Dir, recipe.Model.Path);
        }
        if (fullExperts is not null)
        {
            if (sharding is null) EsftExpertWeights.Save(model, fullExperts, recipe.Output.Dir);
            else GatheredExpertWeights.Save(model, fullExperts, sharding, recipe.Output.Dir);
        }
        log.WriteLine($"{(data.Eval is null ? "train" : "eval")} loss {before:F4} → {after:F4}; adapter in {recipe.Output.Dir}");
        if (fimBefore is not null && fimAfter is not null)
        {
            log.WriteLine($"FIM exact match {fimBefore} → {fimAfter}");
            if (leader)
                AtomicFile.Write(Path.Combine(recipe.Output.Dir, FimExactMatchFile), s => System.Text.Json.JsonSerializer.Serialize(s,
                    new { documents = fimAfter.Documents, before = fimBefore.Matched, after = fimAfter.Matched }));
        }
        return new TrainingResult(recipe.Output.Dir, before, after, steps, fimBefore, fimAfter);
    }

    /// <summary>Where a run with train.fim_exact_match writes its counts: {"documents": N, "before": b, "after": a}.</summary>
    public const string FimExactMatchFile = "fim_exact_match.json";

    /// <summary>The held-out cases of train.fim_exact_match, cut once so that before and after see the same ones.</summary>
    private static async Task<IReadOnlyList<FimCase>> FimCasesAsync(Recipe recipe, TrainingData data, CancellationToken cancel)
    {
        int wanted = recipe.Train.FimExactMatch;
        if (wanted == 0) return [];
        IReadOnlyList<(int Ordinal, string Text)> texts = await data.HeldOutTextsAsync(wanted, cancel);
        if (texts.Count == 0)
            throw new ArgumentException("train.fim_exact_match: the held-out documents include no text records to cut");
        return [.. texts.Select(t => FimCase.Cut(t.Text, recipe.Data.Fim.Seed, t.Ordinal))];
    }

    private static ExpertConfig SelectExperts(EsftRecipe esft, DeepSeekV2Config config, TextWriter log)
    {
        ExpertScores scores = ExpertScores.Load(esft.Scores);
        scores.CheckFits(config, esft.Scores);
        ExpertConfig selected = ExpertConfig.Select(scores, esft.ScoreFunction, esft.TopP);
        log.WriteLine($"ESFT ({esft.Mode.ToString().ToLowerInvariant()}): {selected.Count} routed experts in {selected.Experts.Count} layers " +
                      $"cover {esft.ScoreFunction.ToString().ToLowerInvariant()} score {esft.TopP} per layer " +
                      $"({string.Join(", ", selected.Experts.Select(kv => $"{kv.Key}: {kv.Value.Length}"))})");
        return selected;
    }

    /// <summary>
    /// ESFT decides the routed experts only: in full mode none of them gets LoRA (the selected ones train in full), in
    /// lora mode exactly the selected ones do; attention, dense MLP and shared experts follow the lora section.
    /// </summary>
    private static LoraConfig WithEsft(LoraConfig lora, Recipe recipe, ExpertConfig? esft)
    {
        if (esft is null) return lora;
        if (recipe.Esft.Mode == EsftMode.Full) return lora with { RoutedExpertsEnabled = false, RoutedExperts = null };
        if (recipe.Lora.RoutedExperts == ExpertSelection.None)
            throw new ArgumentException("lora.routed_experts: none leaves nothing for esft.mode: lora to adapt; use all (the default)");
        if (!lora.TargetModules.Intersect(LoraConfig.MlpModules).Any())
            throw new ArgumentException("lora.target_modules: esft.mode: lora adapts the selected experts' gate_proj, up_proj and down_proj; list at least one");
        return lora with
        {
            RoutedExpertsEnabled = true,
            RoutedExperts = esft.Experts.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<int>)kv.Value),
        };
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
