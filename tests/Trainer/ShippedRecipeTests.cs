using Tune.Trainer.Data;
using Tune.Trainer.Recipes;
using static Tune.Tests.Trainer.TrainerFixtures;

namespace Tune.Tests.Trainer;

/// <summary>Every recipe in recipes/ loads and validates; the tiny ones' data reads into rows; the README covers every key.</summary>
public sealed class ShippedRecipeTests
{
    private static string RecipesDirectory => Path.Combine(RepoPaths.Root, "recipes");

    private static string[] Names() =>
        [.. Directory.GetFiles(RecipesDirectory, "*.yaml").Select(Path.GetFileName).Order(StringComparer.Ordinal)!];

    public static TheoryData<string> Recipes() => new(Names());

    [Fact]
    public void TheFiveRecipesAreThere() =>
        Assert.Equal(["coder-v2-lite-chat-lora.yaml", "coder-v2-lite-esft.yaml", "coder-v2-lite-fim-lora.yaml", "tiny-fim-lora.yaml", "tiny-lora.yaml"],
            Names());

    [Theory]
    [MemberData(nameof(Recipes))]
    public void LoadsAndValidates(string name)
    {
        Recipe recipe = RecipeLoader.Load(Path.Combine(RecipesDirectory, name));
        Assert.NotEmpty(recipe.Data.Train);
        Assert.Equal(Path.GetFileNameWithoutExtension(name), Path.GetFileName(recipe.Output.Dir));
    }

    [Theory]
    [InlineData("tiny-lora.yaml", 31, 3, 0)]
    [InlineData("tiny-fim-lora.yaml", 26, 3, 13)]
    public async Task TheTinyRecipesDataReadsIntoRows(string name, int trainDocuments, int evalDocuments, int roughlyFim)
    {
        Recipe recipe = RecipeLoader.Load(Path.Combine(RecipesDirectory, name));
        Assert.Equal("out/demo", recipe.Model.Path);
        TrainingData data = await TrainingData.LoadAsync(recipe.Data, V2, RepoPaths.Root);

        Assert.Equal((trainDocuments, evalDocuments, 0), (data.Summary.TrainDocuments, data.Summary.EvalDocuments, data.Summary.SkippedBinary));
        Assert.InRange(data.Summary.FimPsm, roughlyFim / 2, roughlyFim * 3 / 2 + 1);
        // Enough rows for the recipe's steps to see every row at least once.
        Assert.True(data.Train.RowsPerEpoch <= (long)recipe.Train.MaxSteps * recipe.Train.BatchSize * recipe.Train.GradAccum);
        Assert.All(data.Train.Rows(0, data.Train.RowsPerEpoch), row => Assert.Equal(recipe.Data.SeqLen, row.Length));
    }

    [Fact]
    public void TheShippedDataIsSmall()
    {
        long bytes = Directory.GetFiles(Path.Combine(RecipesDirectory, "data"), "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        Assert.InRange(bytes, 10_000, 200_000);
    }

    [Fact]
    public void TheReadmeExplainsEveryKey()
    {
        string readme = File.ReadAllText(Path.Combine(RecipesDirectory, "README.md"));
        foreach (string section in RecipeSchema.KeysOf("")!)
        {
            Assert.Contains($"### `{section}`", readme);
            foreach (string key in Keys(section))
                Assert.Contains($"| `{key}` |", readme);
        }
        foreach (string key in RecipeSchema.KeysOf("data.train.0")!) Assert.Contains($"| `{key}` |", readme);
    }

    /// <summary>The keys of a section as the README's tables name them: nested sections (data.fim) as fim.rate.</summary>
    private static IEnumerable<string> Keys(string section)
    {
        foreach (string key in RecipeSchema.KeysOf(section)!)
        {
            if (RecipeSchema.KeysOf($"{section}.{key}") is { } nested)
                foreach (string inner in nested) yield return $"{key}.{inner}";
            else yield return key;
        }
    }
}
