using Tune.Trainer.Data;
using static Tune.Tests.Trainer.TrainerFixtures;

namespace Tune.Tests.Trainer;

/// <summary>Rows of exactly seq_len: ids, loss masks, segments, labels and positions on hand-made documents; shuffling; seeking.</summary>
public sealed class PackingTests
{
    private const int Pad = 0;

    [Fact]
    public void PackedRowsCutTheStreamEverySeqLenAndPadOnlyTheLast()
    {
        TokenCorpus corpus = Corpus(([11, 12, 13], null), ([21, 22, 23, 24, 25], [false, false, true, true, true]), ([31, 32], null));
        var rows = new PackedDataset(corpus, [0, 1, 2], sequenceLength: 4, pack: true, Pad, shuffleSeed: null);

        Assert.Equal(3, rows.RowsPerEpoch);
        Assert.Equal(10, rows.TokenCount);
        AssertRow(rows.Row(0), [11, 12, 13, 21], [true, true, true, false], [0, 0, 0, 1]);
        // Document 1 continues as a new segment: it cannot see its first token, in the row before.
        AssertRow(rows.Row(1), [22, 23, 24, 25], [false, true, true, true], [0, 0, 0, 0]);
        AssertRow(rows.Row(2), [31, 32, Pad, Pad], [true, true, false, false], [0, 0, 1, 1]);
    }

    [Fact]
    public void UnpackedRowsHoldOneDocumentAndSplitLongOnesIntoSeqLenChunks()
    {
        TokenCorpus corpus = Corpus(([11, 12, 13], null), ([21, 22, 23, 24, 25], null), ([31, 32], null));
        var rows = new PackedDataset(corpus, [0, 1, 2], sequenceLength: 4, pack: false, Pad, shuffleSeed: null);

        Assert.Equal(4, rows.RowsPerEpoch);
        AssertRow(rows.Row(0), [11, 12, 13, Pad], [true, true, true, false], [0, 0, 0, 1]);
        AssertRow(rows.Row(1), [21, 22, 23, 24], [true, true, true, true], [0, 0, 0, 0]);
        AssertRow(rows.Row(2), [25, Pad, Pad, Pad], [true, false, false, false], [0, 1, 1, 1]);
        AssertRow(rows.Row(3), [31, 32, Pad, Pad], [true, true, false, false], [0, 0, 1, 1]);
    }

    [Fact]
    public void LabelsPredictTheNextTargetOfTheSameSegmentAndPositionsRestartPerSegment()
    {
        // A prompt/completion document (prompt 5, 6 masked), then a text document, then padding.
        TokenCorpus corpus = Corpus(([Bos, 5, 6, 7, Eos], [false, false, false, true, true]), ([Bos, 8, Eos], [false, true, true]));
        PackedRow row = new PackedDataset(corpus, [0, 1], sequenceLength: 10, pack: true, Pad, shuffleSeed: null).Row(0);

        Assert.Equal([Bos, 5, 6, 7, Eos, Bos, 8, Eos, Pad, Pad], row.Ids);
        Assert.Equal([0, 0, 0, 0, 0, 1, 1, 1, 2, 2], row.SegmentIds);
        const int no = PackedRow.IgnoreIndex;
        Assert.Equal([no, no, 7, Eos, no, 8, Eos, no, no, no], row.NextTokenLabels());
        Assert.Equal([0, 1, 2, 3, 4, 0, 1, 2, 0, 1], row.PositionIds());
    }

    [Fact]
    public void EachEpochHoldsEveryTokenOnceInItsOwnSeededOrder()
    {
        TokenCorpus corpus = Corpus([.. Enumerable.Range(0, 40).Select(d => (Enumerable.Range(d * 100, 1 + d % 7).ToArray(), (bool[]?)null))]);
        int[] documents = [.. Enumerable.Range(0, 40)];
        var rows = new PackedDataset(corpus, documents, sequenceLength: 8, pack: true, Pad, shuffleSeed: 42);
        long perEpoch = rows.RowsPerEpoch;
        int[] Tokens(long epoch) => [.. rows.Rows(epoch * perEpoch, perEpoch).SelectMany(r => r.Ids.Where((_, t) => r.LossMask[t]))];

        int[] all = [.. documents.SelectMany(d => corpus.Ids(d).ToArray()).Order()];
        Assert.Equal(all, Tokens(0).Order());
        Assert.Equal(all, Tokens(1).Order());
        Assert.NotEqual(Tokens(0), Tokens(1));
        Assert.Equal(Tokens(0), new PackedDataset(corpus, documents, 8, true, Pad, shuffleSeed: 42).Rows(0, perEpoch)
            .SelectMany(r => r.Ids.Where((_, t) => r.LossMask[t])));
        Assert.NotEqual(Tokens(0), new PackedDataset(corpus, documents, 8, true, Pad, shuffleSeed: 43).Rows(0, perEpoch)
            .SelectMany(r => r.Ids.Where((_, t) => r.LossMask[t])));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void SeekingToARowGivesTheRowReadingFromTheStartGives(bool pack)
    {
        TokenCorpus corpus = Corpus([.. Enumerable.Range(0, 25).Select(d => (Enumerable.Range(d * 100, 1 + d * 3 % 17).ToArray(), (bool[]?)null))]);
        int[] documents = [.. Enumerable.Range(0, 25)];
        var reader = new PackedDataset(corpus, documents, sequenceLength: 6, pack, Pad, shuffleSeed: 9);
        PackedRow[] fromStart = [.. reader.Rows(0, 3 * reader.RowsPerEpoch)];
        for (long k = fromStart.Length - 1; k >= 0; k -= 5)
        {
            // A fresh dataset, as a resumed run has, started at row k.
            PackedRow resumed = new PackedDataset(corpus, documents, 6, pack, Pad, shuffleSeed: 9).Rows(k, 1).Single();
            AssertRow(resumed, fromStart[k].Ids, fromStart[k].LossMask, fromStart[k].SegmentIds);
        }
    }

    [Fact]
    public void FingerprintNamesTheRowsNotTheInstance()
    {
        TokenCorpus corpus = Corpus(([1, 2, 3], null), ([4, 5], null));
        string Fingerprint(int seqLen, long? seed, TokenCorpus? other = null) =>
            new PackedDataset(other ?? corpus, [0, 1], seqLen, pack: true, Pad, seed).Fingerprint;
        Assert.Equal(Fingerprint(4, 1), Fingerprint(4, 1));
        Assert.NotEqual(Fingerprint(4, 1), Fingerprint(5, 1));
        Assert.NotEqual(Fingerprint(4, 1), Fingerprint(4, 2));
        Assert.NotEqual(Fingerprint(4, 1), Fingerprint(4, 1, Corpus(([1, 2, 3], null), ([4, 6], null))));
    }

    private static void AssertRow(PackedRow row, int[] ids, bool[] mask, int[] segments)
    {
        Assert.Equal(ids, row.Ids);
        Assert.Equal(mask, row.LossMask);
        Assert.Equal(segments, row.SegmentIds);
    }
}
