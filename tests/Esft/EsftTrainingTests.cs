using Tune.Formats;
using Tune.Model;
using Tune.Tests.Training;
using Tune.Trainer;
using Tune.Trainer.Esft;
using Tune.Trainer.Recipes;
using Tune.Trainer.Training;

namespace Tune.Tests.Esft;

/// <summary>ESFT through `tune train`'s entry point on the tiny model, with experts selected from real scores of its data.</summary>
[Collection("torch")]
public sealed class EsftTrainingTests
{
    private const double TopP = 0.3;

    private static readonly Lazy<Task<string>> ScoresFile = new(async () =>
    {
        string path = EsftFixtures.NewDirectory("scores") + ".json";
        ExpertScores scores = await ExpertScorer.ScoreAsync(EsftFixtures.Model,
            RecipeLoader.Parse($"model: {{path: {EsftFixtures.Model}}}\n" + EsftFixtures.DataSection(), "d.yaml").Data, TorchRuntime.Cpu, null);
        scores.Save(path);
        return path;
    });

    private static async Task<ExpertConfig> Selected() =>
        ExpertConfig.Select(ExpertScores.Load(await ScoresFile.Value), EsftScoreFunction.Token, TopP);

    private static async Task<Recipe> Recipe(string output, string mode, string lora, params string[] overrides) =>
        RecipeLoader.Parse($$"""
            model: {path: {{EsftFixtures.Model}}, dtype: f32, device: cpu}
            lora: {{lora}}
            esft: {enabled: true, scores: {{await ScoresFile.Value}}, score_function: token, top_p: {{TopP}}, mode: {{mode}}}
            {{EsftFixtures.DataSection()}}
            optim: {lr: 0.01}
            schedule: {kind: constant, warmup_steps: 0}
            train: {batch_size: 1, max_steps: 6, log_every: 100, eval_every: 0, save_every: 2, keep_last: 2, seed: 3}
            output: {dir: {{output}}}
            """, "esft.yaml", overrides);

    private const string NoLora = "{target_modules: []}";

    [Fact]
    public async Task FullModeTrainsOnlyTheSelectedExperts()
    {
        string output = EsftFixtures.NewDirectory("full"), merged = EsftFixtures.NewDirectory("merged");
        TrainingResult result = await TrainingJob.RunAsync(await Recipe(output, "full", NoLora), false, TextWriter.Null);
        Assert.True(result.LossAfter < result.LossBefore, $"loss {result.LossBefore:F4} -> {result.LossAfter:F4}");
        Assert.False(File.Exists(Path.Combine(output, PeftAdapter.WeightsFile)));
        Assert.True(File.Exists(Path.Combine(output, ExpertConfig.FileName)));

        ExpertConfig selected = await Selected();
        var trained = EsftExpertWeights.TensorNames(selected).ToHashSet();
        using (SafetensorsFile experts = SafetensorsFile.Open(Path.Combine(output, EsftExpertWeights.FileName)))
            Assert.Equal(trained.Order(), experts.Tensors.Select(t => t.Name).Order());

        // Merged over the base, exactly the selected experts' tensors differ; every other one is the base's, bit for bit.
        AdapterMerge.Write(EsftFixtures.Model, output, merged);
        using var baseCheckpoint = CheckpointDirectory.Open(EsftFixtures.Model);
        using var mergedCheckpoint = CheckpointDirectory.Open(merged);
        foreach (TensorInfo info in baseCheckpoint.Tensors)
        {
            byte[] before = baseCheckpoint.Locate(info.Name).File.Bytes(baseCheckpoint.Locate(info.Name).Info).ToArray();
            byte[] after = mergedCheckpoint.Locate(info.Name).File.Bytes(mergedCheckpoint.Locate(info.Name).Info).ToArray();
            if (trained.Contains(info.Name)) Assert.False(before.AsSpan().SequenceEqual(after), $"{info.Name} did not train");
            else Assert.True(before.AsSpan().SequenceEqual(after), $"{info.Name} changed");
        }
    }

    [Fact]
    public async Task LoraModeAdaptsOnlyTheSelectedExperts()
    {
        string output = EsftFixtures.NewDirectory("lora");
        const string lora = "{rank: 4, alpha: 8, dropout: 0.0, target_modules: [gate_proj, up_proj, down_proj], dense_mlp: false, shared_experts: false}";
        TrainingResult result = await TrainingJob.RunAsync(await Recipe(output, "lora", lora), false, TextWriter.Null);
        Assert.True(result.LossAfter < result.LossBefore, $"loss {result.LossBefore:F4} -> {result.LossAfter:F4}");
        Assert.False(File.Exists(Path.Combine(output, EsftExpertWeights.FileName)));

        ExpertConfig selected = await Selected();
        string[] expected = [.. EsftExpertWeights.TensorNames(selected).Select(n => n[..^".weight".Length]).Order(StringComparer.Ordinal)];
        using var adapter = PeftAdapterFile.Open(output);
        Assert.Equal(expected, adapter.Modules);
        Assert.All(adapter.Modules, m => Assert.True(adapter.Matrices(m).B.abs().max().item<float>() > 0, $"{m} did not train"));
    }

    [Fact]
    public async Task AnInterruptedFullRunResumesOntoTheSameLossCurve()
    {
        string straight = EsftFixtures.NewDirectory("straight"), interrupted = EsftFixtures.NewDirectory("interrupted");
        IReadOnlyList<StepMetrics> full = (await TrainingJob.RunAsync(await Recipe(straight, "full", NoLora, ResumeAssertions.GentleSteps), false, TextWriter.Null)).Steps;

        // Interrupt after step 5 (its last checkpoint is step 4), then resume.
        var interrupt = new InterruptAt("step 5/");
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await TrainingJob.RunAsync(
            await Recipe(interrupted, "full", NoLora, [.. ResumeAssertions.GentleSteps, "train.log_every=1"]), false, interrupt, interrupt.Token));
        Assert.True(File.Exists(Path.Combine(interrupted, "checkpoints", "step-000004", EsftExpertWeights.FileName)));
        IReadOnlyList<StepMetrics> resumed = (await TrainingJob.RunAsync(await Recipe(interrupted, "full", NoLora, ResumeAssertions.GentleSteps), true, TextWriter.Null)).Steps;

        Assert.Equal(5, resumed[0].Step);
        ResumeAssertions.SameLosses(full.Skip(4).Select(m => m.Loss), resumed.Select(m => m.Loss));
        ResumeAssertions.SameTensors(Path.Combine(straight, EsftExpertWeights.FileName), Path.Combine(interrupted, EsftExpertWeights.FileName));
    }
}
