using System.Text.Json;
using Tune.Tests.Model;
using Tune.Trainer;
using Tune.Trainer.Data;
using Tune.Trainer.Recipes;
using Tune.Trainer.Training;

namespace Tune.Tests.Training;

/// <summary>train.fim_exact_match: how held-out documents are cut and matched, and that an overfit model's count rises.</summary>
[Collection("torch")]
public sealed class FimExactMatchTests
{
    private const string FiveLines = "import os\n\ndef main():\n    print(os.getcwd())\nmain()\n";

    [Fact]
    public void ACutIsOneToThreeWholeLinesAndTheSameEveryTime()
    {
        var middles = new HashSet<string>();
        for (long ordinal = 0; ordinal < 200; ordinal++)
        {
            FimCase cut = FimCase.Cut(FiveLines, seed: 7, ordinal);
            Assert.Equal(FiveLines, cut.Prefix + cut.Middle + cut.Suffix);
            Assert.True(cut.Prefix.Length == 0 || cut.Prefix.EndsWith('\n'), $"prefix {cut.Prefix} ends inside a line");
            Assert.EndsWith("\n", cut.Middle);
            int lines = cut.Middle.Count(c => c == '\n');
            Assert.InRange(lines, 1, FimCase.MaxMiddleLines);
            Assert.Equal(cut, FimCase.Cut(FiveLines, seed: 7, ordinal));
            middles.Add(cut.Middle);
        }
        // Five lines hold 5 + 4 + 3 runs of one, two and three lines; 200 draws reach every one of them.
        Assert.Equal(12, middles.Count);
        Assert.NotEqual(Enumerable.Range(0, 20).Select(i => FimCase.Cut(FiveLines, 7, i)), Enumerable.Range(0, 20).Select(i => FimCase.Cut(FiveLines, 8, i)));
    }

    [Fact]
    public void ALastLineWithoutNewlineAndASingleLineAreWholeMiddles()
    {
        Assert.Equal(new FimCase("", "x = 1", ""), FimCase.Cut("x = 1", 0, 0));
        // "a\n" is one line: the boundary after its newline is the end of the text, not the start of an empty line.
        Assert.Equal(new FimCase("", "a\n", ""), FimCase.Cut("a\n", 0, 3));
        for (long ordinal = 0; ordinal < 50; ordinal++)
        {
            FimCase cut = FimCase.Cut("a\nb", 0, ordinal);
            FimCase[] possible = [new("", "a\n", "b"), new("", "a\nb", ""), new("a\n", "b", "")];
            Assert.Contains(cut, possible);
        }
    }

    [Fact]
    public void MatchingIsExactWithoutTrimming()
    {
        Assert.True(FimExactMatch.Matches("    return a + b\n", "    return a + b\n"));
        Assert.False(FimExactMatch.Matches("    return a + b", "    return a + b\n"));
        Assert.False(FimExactMatch.Matches("    return a + b \n", "    return a + b\n"));
        Assert.False(FimExactMatch.Matches("    return a + b\n\n", "    return a + b\n"));
        Assert.False(FimExactMatch.Matches("", "    return a + b\n"));
    }

    [Fact]
    public async Task TheHeldOutTextsAreTheEvalSplitsDocumentsReadAgain()
    {
        using var dir = new Tune.Tests.Formats.TempDirectory();
        // The empty record is no document, so the ordinals after it are one less than the record numbers.
        string[] texts = ["t0\n", "", "t1\n", "t2\n", "t3\n", "t4\n", "t5\n", "t6\n"];
        string file = Path.Combine(dir.Path, "code.jsonl");
        File.WriteAllLines(file, texts.Select(t => JsonSerializer.Serialize(new { text = t })));
        var data = new DataRecipe { Train = [new DataSourceRecipe { Path = file }], EvalFraction = 0.5, SeqLen = 16, Fim = new FimRecipe { Rate = 0 } };
        TrainingData loaded = await TrainingData.LoadAsync(data, Tune.Tests.Trainer.TrainerFixtures.V2, dir.Path);

        string[] documents = [.. texts.Where(t => t.Length > 0)];
        int[] held = TrainingData.Split(documents.Length, 0.5, seed: 0).Eval;
        Assert.Equal(held.Select(o => (o, documents[o])), await loaded.HeldOutTextsAsync(10));
        Assert.Equal(held[..2].Select(o => (o, documents[o])), await loaded.HeldOutTextsAsync(2));
    }

    [Fact]
    public void ARecipeWithNothingHeldOutIsRejectedByKey()
    {
        // TrainingJobTests' recipe holds nothing out (eval_fraction: 0, no data.eval).
        var e = Assert.Throws<RecipeException>(() => RecipeLoader.Parse(TrainingJobTests.Recipe("out/x"), "x.yaml", ["train.fim_exact_match=5"]));
        Assert.Contains("train.fim_exact_match", e.Message);
        Assert.Contains("holds none out", e.Message);
        var negative = Assert.Throws<RecipeException>(() => RecipeLoader.Parse(TrainingJobTests.Recipe("out/x"), "x.yaml",
            ["train.fim_exact_match=-1", "data.eval_fraction=0.5"]));
        Assert.Contains("train.fim_exact_match", negative.Message);
        Assert.Contains("must be 0 (off) or more, got -1", negative.Message);
    }

    [Fact]
    public async Task AModelOverfitOnTheCasesCompletesThemAll()
    {
        // The eval cases are cut apart from the training FIM draws; a data.fim.seed is searched for under which both
        // cut each document the same way, so the two layouts the model overfits are exactly the cases it is asked.
        string[] texts = ["def add(a, b):\n    return a + b\n", "def mul(a, b):\n    return a * b\n"];
        long seed = SeedWhereTrainingCutsAreTheCases(texts);
        string output = Path.Combine(TestModels.Root, $"fim-{Guid.NewGuid():N}");
        string yaml = TrainingJobTests.Recipe(output); // writes the tiny model, and with it TestModels.Root
        string data = Path.Combine(TestModels.Root, "fim-overfit.jsonl");
        File.WriteAllLines(data, texts.Select(t => JsonSerializer.Serialize(new { text = t })));
        Recipe recipe = RecipeLoader.Parse(yaml, "fim.yaml",
        [
            $"data.train.0.path={data}", $"data.eval=[{{path: {data}, kind: text}}]", "data.fim.rate=1.0", $"data.fim.seed={seed}",
            "data.pack=false", "data.seq_len=48", "train.max_steps=400", "optim.lr=0.01", "schedule.warmup_steps=20", "train.save_every=0", "train.fim_exact_match=2",
        ]);
        TrainingResult result = await TrainingJob.RunAsync(recipe, resume: false, TextWriter.Null);

        Assert.NotNull(result.FimBefore);
        Assert.NotNull(result.FimAfter);
        string counts = $"FIM exact match {result.FimBefore} → {result.FimAfter} (fim.seed {seed}), loss {result.LossBefore:F3} → {result.LossAfter:F3}";
        Assert.True(result.FimBefore == new FimExactMatchScore(0, 2), counts);
        Assert.True(result.FimAfter == new FimExactMatchScore(2, 2), counts);
        using JsonDocument written = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, TrainingJob.FimExactMatchFile)));
        Assert.Equal(2, written.RootElement.GetProperty("documents").GetInt32());
        Assert.Equal(0, written.RootElement.GetProperty("before").GetInt32());
        Assert.Equal(2, written.RootElement.GetProperty("after").GetInt32());
    }

    private static long SeedWhereTrainingCutsAreTheCases(string[] texts)
    {
        for (long seed = 0; seed < 100_000_000; seed++)
            if (texts.Select((text, ordinal) => TrainingCutIsTheCase(text, seed, ordinal)).All(same => same)) return seed;
        throw new InvalidOperationException("no FIM seed below 10^8 cuts both documents as the cases do");
    }

    private static bool TrainingCutIsTheCase(string text, long seed, int ordinal)
    {
        // DocumentEncoder's draws at fim.rate 1.0: the rate draw (always FIM), then the split.
        var random = DeterministicRandom.For(seed, RandomStreams.TrainFim, ordinal);
        random.NextDouble();
        FimSplit split = FimSplit.Draw(text, ref random);
        FimCase cut = FimCase.Cut(text, seed, ordinal);
        // A middle of the whole text would leave both prompts the same, and no model could tell which text to write.
        return cut.Middle != text && split.MiddleStart == cut.Prefix.Length && split.MiddleEnd == cut.Prefix.Length + cut.Middle.Length;
    }
}
