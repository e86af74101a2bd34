using Tune.Tests.Formats;
using Tune.Trainer.Data;
using Tune.Trainer.Recipes;
using static Tune.Tests.Trainer.TrainerFixtures;

namespace Tune.Tests.Trainer;

/// <summary>The whole data section: sources to rows, the eval split, and the same rows on every load.</summary>
public sealed class TrainingDataTests
{
    [Fact]
    public async Task SourcesBecomeRowsOfSeqLenWithASummary()
    {
        using var dir = new TempDirectory();
        WriteCorpus(dir, files: 12, chats: 8);
        DataRecipe data = Recipe(dir) with { EvalFraction = 0 };

        TrainingData loaded = await TrainingData.LoadAsync(data, V2, dir.Path);

        Assert.Null(loaded.Eval);
        Assert.Equal(19, loaded.Summary.TrainDocuments);
        Assert.Equal(1, loaded.Summary.SkippedEmpty);
        Assert.Equal(0, loaded.Summary.FimSpm);
        Assert.InRange(loaded.Summary.FimPsm, 1, 11);
        PackedDataset train = loaded.Train;
        Assert.Equal((train.TokenCount + 63) / 64, train.RowsPerEpoch);
        Assert.All(train.Rows(0, train.RowsPerEpoch), row => Assert.Equal(64, row.Ids.Length));
        int targetEos = train.Rows(0, train.RowsPerEpoch).Sum(r => r.Ids.Where((id, t) => r.LossMask[t] && id == Eos).Count());
        Assert.Equal(11 + 8, targetEos);   // one per text file, one per chat answer; padding EOS is no target
    }

    [Fact]
    public async Task TheEvalSplitIsAFixedShareHeldOutByTheShuffleSeed()
    {
        using var dir = new TempDirectory();
        WriteCorpus(dir, files: 30, chats: 20);
        DataRecipe data = Recipe(dir) with { EvalFraction = 0.1 };

        TrainingData a = await TrainingData.LoadAsync(data, V2, dir.Path);
        TrainingData b = await TrainingData.LoadAsync(data, V2, dir.Path);
        TrainingData other = await TrainingData.LoadAsync(data with { ShuffleSeed = 8 }, V2, dir.Path);

        Assert.Equal(5, a.Summary.EvalDocuments);
        Assert.Equal(44, a.Summary.TrainDocuments);
        Assert.Equal(a.Train.Fingerprint, b.Train.Fingerprint);
        Assert.Equal(a.Eval!.Fingerprint, b.Eval!.Fingerprint);
        Assert.NotEqual(a.Eval.Fingerprint, other.Eval!.Fingerprint);
        Assert.Equal(a.Summary.TrainTokens + a.Summary.EvalTokens, other.Summary.TrainTokens + other.Summary.EvalTokens);
    }

    [Fact]
    public void TheSplitNeverEmptiesEitherSide()
    {
        Assert.Equal((1, 1), Sizes(TrainingData.Split(2, 0.02, 0)));
        Assert.Equal((999, 1), Sizes(TrainingData.Split(1000, 0.0004, 0)));
        Assert.Equal((1, 9), Sizes(TrainingData.Split(10, 0.99, 0)));
        Assert.Equal((10, 0), Sizes(TrainingData.Split(10, 0, 0)));
        Assert.Throws<FormatException>(() => TrainingData.Split(1, 0.5, 0));
        static (int, int) Sizes((int[] Train, int[] Eval) split) => (split.Train.Length, split.Eval.Length);
    }

    [Fact]
    public async Task EvalSourcesReplaceTheSplit()
    {
        using var dir = new TempDirectory();
        WriteCorpus(dir, files: 4, chats: 3);
        DataRecipe data = Recipe(dir) with { Eval = [new DataSourceRecipe { Path = "chat.jsonl", Kind = RecordKind.Messages }] };

        TrainingData loaded = await TrainingData.LoadAsync(data, V2, dir.Path);
        Assert.Equal((6, 3), (loaded.Summary.TrainDocuments, loaded.Summary.EvalDocuments));
        Assert.Equal(0.0, data.EvalFractionOrDefault());
    }

    private static DataRecipe Recipe(TempDirectory dir) => new()
    {
        Train =
        [
            new DataSourceRecipe { Path = "src", Include = ["*.py"] },
            new DataSourceRecipe { Path = Path.Combine(dir.Path, "chat.jsonl"), Kind = RecordKind.Messages },
        ],
        SeqLen = 64,
        Fim = new FimRecipe { Rate = 0.5, Seed = 1 },
        ShuffleSeed = 3,
    };

    /// <summary><paramref name="files"/> Python files under src/ (one of them empty) and a chat JSONL of <paramref name="chats"/> lines.</summary>
    private static void WriteCorpus(TempDirectory dir, int files, int chats)
    {
        Directory.CreateDirectory(dir.File("src"));
        for (int i = 0; i < files; i++)
            File.WriteAllText(dir.File($"src/m{i:D2}.py"), i == 0 ? "" : $"def f{i}(x):\n    return x * {i}\n");
        File.WriteAllLines(dir.File("chat.jsonl"), Enumerable.Range(0, chats).Select(i =>
            $$"""{"messages": [{"role": "user", "content": "double {{i}}?"}, {"role": "assistant", "content": "{{2 * i}}"}]}"""));
    }
}
