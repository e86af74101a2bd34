using Tune.Model.Tokenization;
using Tune.Trainer.Recipes;

namespace Tune.Trainer.Data;

/// <summary>
/// A recipe's data section made into rows: every source read in order, each record rendered (FIM for text),
/// tokenized once, then split into train and eval documents and packed. Needs no model and no training loop, so
/// expert scoring and tests use it as the loop does.
/// </summary>
public sealed class TrainingData
{
    private readonly DataSourceRecipe[] _evalSources;
    private readonly string _evalKey;
    private readonly int[] _evalDocuments;
    private readonly string _baseDirectory;

    private TrainingData(PackedDataset train, PackedDataset? eval, DataSummary summary, DataSourceRecipe[] evalSources, string evalKey,
        int[] evalDocuments, string baseDirectory)
    {
        Train = train;
        Eval = eval;
        Summary = summary;
        _evalSources = evalSources;
        _evalKey = evalKey;
        _evalDocuments = evalDocuments;
        _baseDirectory = baseDirectory;
    }

    /// <summary>Reshuffled every epoch by data.shuffle_seed; read it by row index to resume.</summary>
    public PackedDataset Train { get; }

    /// <summary>Null without eval sources and with eval_fraction 0; never shuffled.</summary>
    public PackedDataset? Eval { get; }

    public DataSummary Summary { get; }

    /// <summary>Reads and tokenizes the data; relative source paths are taken from <paramref name="baseDirectory"/>.</summary>
    public static async Task<TrainingData> LoadAsync(DataRecipe data, DeepSeekTokenizer tokenizer, string baseDirectory,
        CancellationToken cancellationToken = default)
    {
        var counts = new Counts();
        TokenCorpus trainCorpus = await ReadCorpusAsync(data.Train, "data.train", RandomStreams.TrainFim, data, tokenizer, baseDirectory, counts, cancellationToken);
        if (trainCorpus.DocumentCount == 0)
            throw new FormatException($"data.train: no documents ({counts.SkippedEmpty} empty, {counts.SkippedBinary} binary files skipped)");
        int pad = tokenizer.PadId ?? tokenizer.EosId;

        PackedDataset train, eval;
        int[] evalDocuments;
        if (data.Eval.Length > 0)
        {
            TokenCorpus evalCorpus = await ReadCorpusAsync(data.Eval, "data.eval", RandomStreams.EvalFim, data, tokenizer, baseDirectory, counts, cancellationToken);
            if (evalCorpus.DocumentCount == 0) throw new FormatException("data.eval: no documents");
            train = new PackedDataset(trainCorpus, Range(trainCorpus.DocumentCount), data.SeqLen, data.Pack, pad, data.ShuffleSeed);
            evalDocuments = Range(evalCorpus.DocumentCount);
            eval = new PackedDataset(evalCorpus, evalDocuments, data.SeqLen, data.Pack, pad, shuffleSeed: null);
        }
        else
        {
            (int[] trainDocuments, evalDocuments) = Split(trainCorpus.DocumentCount, data.EvalFractionOrDefault(), data.ShuffleSeed);
            train = new PackedDataset(trainCorpus, trainDocuments, data.SeqLen, data.Pack, pad, data.ShuffleSeed);
            eval = new PackedDataset(trainCorpus, evalDocuments, data.SeqLen, data.Pack, pad, shuffleSeed: null);
        }
        PackedDataset? held = eval.DocumentCount > 0 ? eval : null;
        var summary = new DataSummary(train.DocumentCount, train.TokenCount, train.RowsPerEpoch,
            eval.DocumentCount, eval.TokenCount, eval.RowsPerEpoch, counts.Psm, counts.Spm, counts.SkippedEmpty, counts.SkippedBinary);
        return data.Eval.Length > 0
            ? new TrainingData(train, held, summary, data.Eval, "data.eval", evalDocuments, baseDirectory)
            : new TrainingData(train, held, summary, data.Train, "data.train", evalDocuments, baseDirectory);
    }

    /// <summary>
    /// The first <paramref name="count"/> held-out text documents with their ordinals, in reading order, read again
    /// from their sources: the corpus keeps only tokens, FIM-rearranged, and keeping every document's text as well
    /// would take more memory than the tokens do.
    /// </summary>
    public async Task<IReadOnlyList<(int Ordinal, string Text)>> HeldOutTextsAsync(int count, CancellationToken cancellationToken = default)
    {
        var held = new HashSet<int>(Eval is null ? [] : _evalDocuments);
        var found = new List<(int, string)>();
        int ordinal = 0;
        for (int i = 0; i < _evalSources.Length && found.Count < count; i++)
        {
            await foreach (TrainingRecord record in RecordSources.ReadAsync(_evalSources[i], $"{_evalKey}.{i}", _baseDirectory,
                               _ => { }, cancellationToken))
            {
                // The ordinals DocumentEncoder gave: every record became a document but a text record with no text.
                if (record is TextRecord { Text.Length: 0 }) continue;
                if (record is TextRecord text && held.Contains(ordinal)) found.Add((ordinal, text.Text));
                ordinal++;
                if (found.Count == count) break;
            }
        }
        return found;
    }

    /// <summary>
    /// Holds out round(fraction × n) documents (at least one when the fraction is above 0), chosen by a permutation
    /// of the shuffle seed, so the split is the same every run; each side keeps reading order.
    /// </summary>
    internal static (int[] Train, int[] Eval) Split(int documents, double fraction, long seed)
    {
        if (fraction == 0) return (Range(documents), []);
        if (documents < 2)
            throw new FormatException($"data.eval_fraction: {documents} document cannot be split; set data.eval_fraction: 0 or give data.eval");
        int held = Math.Clamp((int)Math.Round(fraction * documents, MidpointRounding.AwayFromZero), 1, documents - 1);
        int[] order = Range(documents);
        DeterministicRandom.For(seed, RandomStreams.EvalSplit, 0).Shuffle(order);
        int[] eval = order[..held];
        int[] train = order[held..];
        Array.Sort(eval);
        Array.Sort(train);
        return (train, eval);
    }

    private static async Task<TokenCorpus> ReadCorpusAsync(DataSourceRecipe[] sources, string key, long fimStream, DataRecipe data,
        DeepSeekTokenizer tokenizer, string baseDirectory, Counts counts, CancellationToken cancellationToken)
    {
        var encoder = new DocumentEncoder(tokenizer, data.Fim, fimStream);
        var builder = new TokenCorpusBuilder();
        var document = new DocumentBuffer(tokenizer);
        for (int i = 0; i < sources.Length; i++)
        {
            await foreach (TrainingRecord record in RecordSources.ReadAsync(sources[i], $"{key}.{i}", baseDirectory,
                               _ => counts.SkippedBinary++, cancellationToken))
            {
                if (!encoder.Encode(record, builder.DocumentCount, document, out FimMode fim))
                {
                    counts.SkippedEmpty++;
                    continue;
                }
                builder.Add(document);
                if (fim == FimMode.Psm) counts.Psm++;
                else if (fim == FimMode.Spm) counts.Spm++;
            }
        }
        return builder.Build();
    }

    private static int[] Range(int count) => [.. Enumerable.Range(0, count)];

    private sealed class Counts
    {
        public int Psm;
        public int Spm;
        public int SkippedEmpty;
        public int SkippedBinary;
    }
}
