using Tune.Trainer.Data;
using Tune.Trainer.Recipes;

namespace Tune.Tests.Trainer;

/// <summary>Recipes: defaults, errors that name file, line and key, --set overrides, and the shipped recipes.</summary>
public sealed class RecipeTests
{
    private const string File = "recipes/test.yaml";

    private const string Minimal = """
        model:
          path: out/demo
        data:
          train:
            - path: data/code
        """;

    [Fact]
    public void AMinimalRecipeTakesEveryDefault()
    {
        Recipe recipe = RecipeLoader.Parse(Minimal, File);
        Assert.Equal("out/demo", recipe.Model.Path);
        Assert.Equal((16, 32.0, 0.05), (recipe.Lora.Rank, recipe.Lora.Alpha, recipe.Lora.Dropout));
        Assert.Equal(LoraRecipe.KnownModules, recipe.Lora.TargetModules);
        Assert.Equal(ExpertSelection.All, recipe.Lora.RoutedExperts);
        Assert.Equal(new DataSourceRecipe { Path = "data/code" }.Kind, recipe.Data.Train.Single().Kind);
        Assert.Equal((4096, 0.5, 0.0, true), (recipe.Data.SeqLen, recipe.Data.Fim.Rate, recipe.Data.Fim.SpmRate, recipe.Data.Pack));
        Assert.Equal(DataRecipe.DefaultEvalFraction, recipe.Data.EvalFractionOrDefault());
        Assert.Equal([0.9, 0.95], recipe.Optim.Betas);
        Assert.Equal(ScheduleKind.Cosine, recipe.Schedule.Kind);
        Assert.Null(recipe.Train.AuxLossCoef);
        Assert.Equal(Path.Combine("out", "test"), recipe.Output.Dir);
    }

    [Theory]
    [InlineData("lora:\n  rnak: 8\n", "lora.rnak", 7, "unknown key; lora has rank, alpha, dropout, use_rslora, target_modules")]
    [InlineData("lora:\n  rank: -1\n", "lora.rank", 7, "must be at least 1, got -1")]
    [InlineData("lora:\n  rank: sixteen\n", "lora.rank", 7, "expected an integer, got \"sixteen\"")]
    [InlineData("lora:\n  rank: 8\n  rank: 9\n", "lora.rank", 8, "given twice")]
    [InlineData("lora:\n  target_modules: [q_proj, gate]\n", "lora.target_modules.1", 7, "\"gate\" is not a DeepSeek-V2 projection")]
    [InlineData("lora:\n", "lora", 6, "has no value")]
    [InlineData("schedule:\n  kind: linear\n", "schedule.kind", 7, "expected one of cosine, constant, got \"linear\"")]
    [InlineData("train:\n  batch_size: 0\n", "train.batch_size", 7, "must be at least 1, got 0")]
    [InlineData("lora:\n  target_modules: [q_proj, ~]\n", "lora.target_modules.1", 7, "has no value; give a string")]
    [InlineData("optim:\n  betas: [0.9]\n", "optim.betas", 7, "needs two numbers in [0, 1), got [0.9]")]
    [InlineData("schedule:\n  warmup_steps: 50\ntrain:\n  max_steps: 20\n", "schedule.warmup_steps", 7, "50 is more than train.max_steps (20)")]
    [InlineData("esft:\n  enabled: true\n", "esft.scores", null, "required when esft.enabled")]
    [InlineData("tarin:\n  seed: 1\n", "tarin", 6, "unknown key; a recipe has model, lora, esft, data, optim, schedule, train, output")]
    public void ABadKeyOrValueNamesFileLineAndKey(string appended, string key, int? line, string message)
    {
        var e = Assert.Throws<RecipeException>(() => RecipeLoader.Parse(Minimal + "\n" + appended, File));
        RecipeProblem problem = Assert.Single(e.Problems);
        Assert.Equal((key, (long?)line), (problem.Key, problem.Line));
        Assert.Contains(message, problem.Message);
        string where = line is null ? File : $"{File}:{line}";
        Assert.StartsWith($"{where}: {key}: ", e.Message);
        Assert.Equal(File, e.File);
    }

    [Fact]
    public void AnUnknownKeyInsideADataSourceNamesItsIndex()
    {
        var e = Assert.Throws<RecipeException>(() => RecipeLoader.Parse(Minimal + "\n    - path: b.jsonl\n      knd: messages\n", File));
        Assert.Equal(("data.train.1.knd", (long?)7), (e.Problems[0].Key, e.Problems[0].Line));
        Assert.Contains("data.train.1 has path, kind, format, include, exclude, text_field", e.Message);
    }

    [Fact]
    public void AllProblemsAreReportedAtOnce()
    {
        var e = Assert.Throws<RecipeException>(() => RecipeLoader.Parse("lora:\n  rank: 0\n  dropout: 1.5\n", File));
        Assert.Equal(["model.path", "lora.rank", "lora.dropout", "data.train"], e.Problems.Select(p => p.Key));
        Assert.Equal([null, 2L, 3L, null], e.Problems.Select(p => p.Line));
        Assert.Equal(4, e.Message.Split(Environment.NewLine).Length);
    }

    [Fact]
    public void NotYamlIsASyntaxErrorWithItsLine()
    {
        var e = Assert.Throws<RecipeException>(() => RecipeLoader.Parse("model:\n  path: [unclosed\n", File));
        Assert.Contains("not valid YAML", e.Message);
        Assert.NotNull(e.Problems[0].Line);
    }

    [Fact]
    public void SetOverridesAreTypedByTheirKeyAndValidatedLikeTheFile()
    {
        Recipe recipe = RecipeLoader.Parse(Minimal, File,
        [
            "lora.rank=8", "lora.use_rslora=true", "lora.target_modules=[q_proj, o_proj]", "optim.lr=1e-4", "optim.betas.1=0.999",
            "data.train.0.path=other/code", "data.train.0.kind=prompt_completion", "data.fim.rate=0", "schedule.kind=constant",
            "train.aux_loss_coef=null", "data.eval_fraction=0.1", "lora.routed_experts=listed", "lora.routed_expert_ids={1: [0, 3]}",
            "output.dir=out/x=y",
        ]);
        Assert.Equal((8, true), (recipe.Lora.Rank, recipe.Lora.UseRslora));
        Assert.Equal(["q_proj", "o_proj"], recipe.Lora.TargetModules);
        Assert.Equal((1e-4, 0.999), (recipe.Optim.Lr, recipe.Optim.Betas[1]));
        Assert.Equal(("other/code", RecordKind.PromptCompletion), (recipe.Data.Train[0].Path, recipe.Data.Train[0].Kind));
        Assert.Equal((0.0, ScheduleKind.Constant, 0.1), (recipe.Data.Fim.Rate, recipe.Schedule.Kind, recipe.Data.EvalFractionOrDefault()));
        Assert.Equal([0, 3], recipe.Lora.RoutedExpertIds[1]);
        Assert.Equal("out/x=y", recipe.Output.Dir);
    }

    [Theory]
    [InlineData("lora.rnak=8", "lora.rnak", "unknown key; lora has rank")]
    [InlineData("lora.rank=big", "lora.rank", "expected an integer, got \"big\"")]
    [InlineData("lora.rank=0", "lora.rank", "must be at least 1, got 0")]
    [InlineData("data.train.3.path=x", "data.train.3.path", "data.train has 1 items")]
    [InlineData("lora.rank", "lora.rank", "expected key=value")]
    public void ABadOverrideNamesTheSetKey(string assignment, string key, string message)
    {
        var e = Assert.Throws<RecipeException>(() => RecipeLoader.Parse(Minimal, File, [assignment]));
        RecipeProblem problem = Assert.Single(e.Problems);
        Assert.Equal((key, (long?)null, true), (problem.Key, problem.Line, problem.FromOverride));
        Assert.Contains(message, problem.Message);
        Assert.StartsWith($"{File}: --set {key}: ", e.Message);
    }

    [Fact]
    public void ARecipeWrittenOutReadsBackTheSame()
    {
        Recipe recipe = RecipeLoader.Parse(Minimal, File, ["lora.routed_experts=listed", "lora.routed_expert_ids={2: [1]}", "train.aux_loss_coef=0.01"]);
        string yaml = RecipeLoader.ToYaml(recipe);
        Assert.Equal(yaml, RecipeLoader.ToYaml(RecipeLoader.Parse(yaml, File)));
        Assert.Contains("routed_experts: listed", yaml);
    }

    [Fact]
    public void AMissingFileIsARecipeError()
    {
        var e = Assert.Throws<RecipeException>(() => RecipeLoader.Load(Path.Combine(Path.GetTempPath(), "no-such-recipe.yaml")));
        Assert.Contains("no-such-recipe.yaml", e.Message);
    }
}
