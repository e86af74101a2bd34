using Tune.Tests.Model;
using Tune.Trainer;
using Tune.Trainer.Recipes;
using Tune.Trainer.Training;

namespace Tune.Tests.Training;

/// <summary>`tune train`'s library entry point on the tiny model: it learns, and a resumed run is the same run.</summary>
[Collection("torch")]
public sealed class TrainingJobTests
{
    internal static string Recipe(string output)
    {
        string model = TestModels.Checkpoint(TestModels.Tiny with { VocabSize = 102400, InitializerRange = 0.5 });
        string data = Path.Combine(TestModels.Root, "overfit.jsonl");
        if (!File.Exists(data))
            File.WriteAllText(data, """{"text": "def add(a, b):\n    return a + b\n"}""" + "\n" +
                                    """{"text": "def mul(a, b):\n    return a * b\n"}""" + "\n");
        return $$"""
            model: {path: {{model}}, dtype: f32, device: cpu}
            lora: {rank: 8, alpha: 16, dropout: 0.0}
            data:
              train: [{path: {{data}}, kind: text}]
              eval_fraction: 0
              seq_len: 32
              fim: {rate: 0}
            optim: {lr: 0.03}
            schedule: {kind: cosine, warmup_steps: 5, min_lr_ratio: 0.01}
            train: {batch_size: 1, max_steps: 120, log_every: 100, eval_every: 0, save_every: 10, keep_last: 2, aux_loss_coef: 0.001, seed: 3}
            output:
              dir: {{output}}
            """;
    }

    private static string NewOutput() => Path.Combine(TestModels.Root, $"train-{Guid.NewGuid():N}");

    [Fact]
    public async Task ASmallDatasetIsOverfit()
    {
        string output = NewOutput();
        Recipe recipe = RecipeLoader.Parse(Recipe(output), "overfit.yaml");
        TrainingResult result = await TrainingJob.RunAsync(recipe, resume: false, TextWriter.Null);
        Assert.True(result.LossAfter <= 0.1 * result.LossBefore, $"loss {result.LossBefore:F3} -> {result.LossAfter:F3}");
        Assert.True(File.Exists(Path.Combine(output, "adapter_model.safetensors")));
        byte[] png = File.ReadAllBytes(Path.Combine(output, "loss_curve.png"));
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);
        Assert.Equal(LossCurve.Width, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16, 4)));
        Assert.Equal(LossCurve.Height, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20, 4)));
        Assert.Equal(120, File.ReadAllLines(Path.Combine(output, "metrics.jsonl")).Length);
        Assert.Equal(["step-000110", "step-000120"], Directory.GetDirectories(Path.Combine(output, "checkpoints")).Select(Path.GetFileName).Order());
    }

    [Theory]
    [InlineData(false)]
    // The routers trained in full travel in the checkpoint's adapter (modules_to_save) and are restored on resume.
    [InlineData(true)]
    public async Task AnInterruptedRunResumesOntoTheSameLossCurve(bool trainRouter)
    {
        string straight = NewOutput(), interrupted = NewOutput();
        string[] settings = [.. ResumeAssertions.GentleSteps, "train.max_steps=20", $"lora.train_router={(trainRouter ? "true" : "false")}"];
        IReadOnlyList<StepMetrics> full = (await TrainingJob.RunAsync(
            RecipeLoader.Parse(Recipe(straight), "a.yaml", settings), false, TextWriter.Null)).Steps;

        // Interrupt the same run after step 12 (its last checkpoint is step 10), then resume it.
        var interrupt = new InterruptAt("step 12/");
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => TrainingJob.RunAsync(
            RecipeLoader.Parse(Recipe(interrupted), "b.yaml", [.. settings, "train.log_every=1"]),
            false, interrupt, interrupt.Token));
        IReadOnlyList<StepMetrics> resumed = (await TrainingJob.RunAsync(
            RecipeLoader.Parse(Recipe(interrupted), "b.yaml", settings), true, TextWriter.Null)).Steps;

        Assert.Equal(10, resumed.Count);
        Assert.Equal(11, resumed[0].Step);
        ResumeAssertions.SameLosses(full.Skip(10).Select(m => m.Loss), resumed.Select(m => m.Loss));
        ResumeAssertions.SameTensors(Path.Combine(straight, "adapter_model.safetensors"), Path.Combine(interrupted, "adapter_model.safetensors"));
        using var adapter = Tune.Model.PeftAdapterFile.Open(interrupted);
        Assert.Equal(trainRouter ? ["model.layers.1.mlp.gate", "model.layers.2.mlp.gate"] : [], adapter.SavedModules);
    }

    [Fact]
    public async Task GradClipZeroTurnsClippingOff()
    {
        // libtorch scales gradients by min(1, max_norm / norm): passed through, 0 would zero them and nothing would learn.
        IReadOnlyList<StepMetrics> steps = (await TrainingJob.RunAsync(RecipeLoader.Parse(Recipe(NewOutput()), "noclip.yaml",
            ["optim.grad_clip=0", "train.max_steps=3", "schedule.warmup_steps=1"]), false, TextWriter.Null)).Steps;
        Assert.True(steps[0].GradNorm > 1, $"the first gradient norm {steps[0].GradNorm} would not have been clipped at 1 either");
        Assert.True(steps[^1].Loss < steps[0].Loss, string.Join(", ", steps.Select(m => m.Loss)));
    }
}
