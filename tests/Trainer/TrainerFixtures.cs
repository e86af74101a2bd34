using Tune.Model.Tokenization;
using Tune.Tests.Tokenization;
using Tune.Trainer.Data;
using Tune.Trainer.Recipes;

namespace Tune.Tests.Trainer;

/// <summary>The V2 tokenizer and small builders the data tests share.</summary>
internal static class TrainerFixtures
{
    public static DeepSeekTokenizer V2 => LoadedTokenizers.V2;

    public const int Bos = 100000;
    public const int Eos = 100001;
    public const int FimHole = 100002;
    public const int FimBegin = 100003;
    public const int FimEnd = 100004;
    public const int EndOfTurn = 100008;

    public static RecordOrigin Origin { get; } = new("test.jsonl", Line: 1);

    public static int[] Text(string text) => V2.EncodeText(text);

    public static bool[] Repeat(bool value, int count) => Enumerable.Repeat(value, count).ToArray();

    /// <summary>Renders one record as the pipeline does.</summary>
    public static (int[] Ids, bool[] Mask, FimMode Fim) Render(TrainingRecord record, FimRecipe? fim = null, long ordinal = 0)
    {
        var encoder = new DocumentEncoder(V2, fim ?? new FimRecipe { Rate = 0 }, RandomStreams.TrainFim);
        var buffer = new DocumentBuffer(V2);
        Assert.True(encoder.Encode(record, ordinal, buffer, out FimMode mode));
        return ([.. buffer.Ids], [.. buffer.Targets], mode);
    }

    /// <summary>A corpus of hand-made documents: ids, with every token a target unless a mask is given.</summary>
    public static TokenCorpus Corpus(params (int[] Ids, bool[]? Mask)[] documents)
    {
        var builder = new TokenCorpusBuilder();
        foreach (var (ids, mask) in documents) builder.Add(ids, mask ?? Repeat(true, ids.Length));
        return builder.Build();
    }
}
