using Tune.Formats;
using Tune.Model;
using Tune.Tests.Esft;
using Tune.Tests.Model;
using Tune.Tests.Training;
using Tune.Trainer;
using Tune.Trainer.Esft;
using Tune.Trainer.Recipes;
using Xunit.Abstractions;
using static Tune.Tests.Parallel.ExpertParallelTrainingTests;

namespace Tune.Tests.Parallel;

/// <summary>
/// ESFT full mode under `mpirun -np 2 tune train` against the single-process run on the same rows: each rank trains the
/// selected experts it holds (experts 0-3 are rank 0's, 4-7 rank 1's), and the output is gathered into the
/// esft_experts.safetensors and expert_cfg.json one process writes.
/// </summary>
[Collection("torch")]
public sealed class ExpertParallelEsftTests(ITestOutputHelper testOutput)
{
    private static string[] FullMode(string scores) =>
        [.. Steps, "lora.target_modules=[]", "esft.enabled=true", $"esft.scores={scores}", "esft.mode=full", "esft.score_function=token", "esft.top_p=0.3"];

    [Theory]
    // Both ranks train experts, and rank 0 none of layer 2's.
    [InlineData("1:1,6 2:5")]
    // Rank 0 holds none of the selected experts: it trains nothing itself but still routes its rows to rank 1.
    [InlineData("1:5 2:4,7")]
    public async Task ShardedFullModeEqualsTheSingleProcessRunOnTheSameRows(string selection)
    {
        string scores = ScoresSelecting(selection);
        string[] settings = FullMode(scores);
        string single = Path.Combine(TestModels.Root, $"ep-esft-{Guid.NewGuid():N}"), sharded = single + "-sharded";
        TrainingResult expected = await TrainingJob.RunAsync(
            RecipeLoader.Parse(TrainingJobTests.Recipe(single), "single.yaml", [.. settings, "train.batch_size=2"]), false, TextWriter.Null);

        (int exit, string output, _) = Mpirun($"-np 2 dotnet {ExpertParallelTrainingTests.Tune} train {WriteRecipe(sharded)} {Sets([.. settings, "train.batch_size=1"])}");
        Assert.True(exit == 0, $"mpirun exited {exit}:\n{output}");

        double[] losses = Metrics(sharded, "loss");
        ResumeAssertions.SameLosses(expected.Steps.Select(m => m.Loss), losses);
        ResumeAssertions.SameLosses(expected.Steps.Select(m => m.GradNorm), Metrics(sharded, "grad_norm"));
        Assert.Equal(File.ReadAllText(Path.Combine(single, ExpertConfig.FileName)), File.ReadAllText(Path.Combine(sharded, ExpertConfig.FileName)));
        Assert.False(File.Exists(Path.Combine(sharded, PeftAdapter.WeightsFile)));
        string expectedWeights = Path.Combine(single, EsftExpertWeights.FileName), weights = Path.Combine(sharded, EsftExpertWeights.FileName);
        (double difference, string worst) = ResumeAssertions.MaxRelativeDifference(expectedWeights, weights);
        double smallestChange = SmallestChange(weights);
        testOutput.WriteLine($"{selection}: expert weights differ by {difference:E2} ({worst}); the least trained tensor moved by {smallestChange:E2}; " +
                             $"losses {string.Join(", ", losses.Select(l => l.ToString("F6")))}");
        Assert.True(difference <= 1e-5, $"{worst} differs by {difference:E2} of its largest value");
        // Every selected expert moved (by about lr × steps: AdamW's steps are about lr whatever the gradient's size) far
        // more than the tolerance, so a lost or misrouted gradient would show above.
        Assert.True(smallestChange > 10 * 1e-5, $"a selected expert moved by only {smallestChange:E2} of its largest value");

        // Each rank checkpointed the selected experts it holds, and only those.
        ExpertConfig selected = ExpertConfig.Select(ExpertScores.Load(scores), EsftScoreFunction.Token, 0.3);
        for (int rank = 0; rank < 2; rank++)
        {
            int first = 4 * rank;
            using var part = SafetensorsFile.Open(Path.Combine(sharded, "checkpoints", "step-000004", $"rank-{rank}", EsftExpertWeights.FileName));
            Assert.Equal(EsftExpertWeights.TensorNames(selected.HeldBy(e => e >= first && e < first + 4)).Order(StringComparer.Ordinal),
                part.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        }
    }

    [Fact]
    public void AShardedFullRunResumesOntoTheSameLossesAndExperts()
    {
        string[] settings = FullMode(ScoresSelecting("1:1,6 2:5"));
        string straight = Path.Combine(TestModels.Root, $"ep-esft-{Guid.NewGuid():N}"), resumed = straight + "-resumed";
        (int exit, string output, _) = Mpirun($"-np 2 dotnet {ExpertParallelTrainingTests.Tune} train {WriteRecipe(straight)} {Sets(settings)}");
        Assert.True(exit == 0, $"mpirun exited {exit}:\n{output}");

        // Stopped after step 2 (its checkpoint), then continued to step 4 by a second job.
        string recipe = WriteRecipe(resumed);
        (exit, output, _) = Mpirun($"-np 2 dotnet {ExpertParallelTrainingTests.Tune} train {recipe} {Sets([.. settings, "train.max_steps=2"])}");
        Assert.True(exit == 0, $"mpirun exited {exit}:\n{output}");
        (exit, output, _) = Mpirun($"-np 2 dotnet {ExpertParallelTrainingTests.Tune} train {recipe} {Sets(settings)} --resume");
        Assert.True(exit == 0, $"mpirun exited {exit}:\n{output}");
        Assert.Contains("resumed from", output);

        ResumeAssertions.SameLosses(Metrics(straight, "loss"), Metrics(resumed, "loss"));
        ResumeAssertions.SameTensors(Path.Combine(straight, EsftExpertWeights.FileName), Path.Combine(resumed, EsftExpertWeights.FileName));
    }

    /// <summary>A scores file whose top_p 0.3 selection is "layer:expert,expert layer:expert" (token scores, experts of a layer equal).</summary>
    private static string ScoresSelecting(string selection)
    {
        var layers = new Dictionary<int, double[]>();
        foreach (string part in selection.Split(' '))
        {
            int layer = int.Parse(part.Split(':')[0]);
            int[] experts = part.Split(':')[1].Split(',').Select(int.Parse).ToArray();
            // The chosen (one or two) share 0.5, so only all of them together reach top_p 0.3; the rest share the other 0.5.
            double chosen = 0.5 / experts.Length, other = 0.5 / (8 - experts.Length);
            layers[layer] = Enumerable.Range(0, 8).Select(e => experts.Contains(e) ? chosen : other).ToArray();
        }
        string path = Path.Combine(Directory.CreateDirectory(TestModels.Root).FullName, $"ep-esft-scores-{Guid.NewGuid():N}.json");
        EsftFixtures.Scores(layers).Save(path);
        return path;
    }

    /// <summary>The smallest, over the tensors of <paramref name="trainedPath"/>, of how far training moved it from the base
    /// model, relative to the base tensor's largest value.</summary>
    private static double SmallestChange(string trainedPath)
    {
        using var trained = SafetensorsFile.Open(trainedPath);
        using var checkpoint = CheckpointDirectory.Open(EsftFixtures.Model);
        double smallest = double.PositiveInfinity;
        foreach (TensorInfo t in trained.Tensors)
        {
            (SafetensorsFile file, TensorInfo info) = checkpoint.Locate(t.Name);
            var before = new float[info.ElementCount];
            var after = new float[t.ElementCount];
            file.ReadFloat32(info, before);
            trained.ReadFloat32(t, after);
            smallest = Math.Min(smallest, before.Zip(after, (b, a) => Math.Abs(a - b)).Max() / before.Max(v => Math.Abs(v)));
        }
        return smallest;
    }
}
