using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Tune.Trainer.Data;

/// <summary>
/// Documents of a <see cref="TokenCorpus"/> as rows of exactly <see cref="SequenceLength"/> tokens, addressable by
/// row index so a resumed run continues with exactly the row it would have seen next.
/// <para>
/// Packed (<c>data.pack: true</c>): the epoch's documents, in its order, are laid end to end and cut every
/// <see cref="SequenceLength"/> tokens; a document that crosses a cut, including any document longer than a row,
/// continues at the start of the next row as a new segment (it cannot attend to its part in the row before, as in
/// GPT-style pre-training). Only the epoch's last row is padded. Unpacked: one document per row, padded; a longer
/// document takes consecutive rows, one chunk of <see cref="SequenceLength"/> tokens each.
/// </para>
/// <para>
/// Row <c>k</c> belongs to epoch <c>k / RowsPerEpoch</c>. With a shuffle seed every epoch orders the documents by
/// its own permutation; rows per epoch stay the same because the documents do (FIM is drawn once per document).
/// </para>
/// </summary>
public sealed class PackedDataset
{
    private readonly TokenCorpus _corpus;
    private readonly int[] _documents;
    private readonly long? _shuffleSeed;
    private EpochLayout? _lastLayout;
    private string? _fingerprint;

    internal PackedDataset(TokenCorpus corpus, int[] documents, int sequenceLength, bool pack, int padId, long? shuffleSeed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sequenceLength, 2);
        _corpus = corpus;
        _documents = documents;
        _shuffleSeed = shuffleSeed;
        SequenceLength = sequenceLength;
        Packed = pack;
        PadId = padId;
        long tokens = 0, rows = 0;
        foreach (int document in documents)
        {
            int length = corpus.Length(document);
            tokens += length;
            rows += RowsOf(length);
        }
        TokenCount = tokens;
        RowsPerEpoch = pack ? (tokens + sequenceLength - 1) / sequenceLength : rows;
    }

    public int SequenceLength { get; }

    public bool Packed { get; }

    public int PadId { get; }

    public int DocumentCount => _documents.Length;

    /// <summary>Document tokens in one epoch, padding not counted.</summary>
    public long TokenCount { get; }

    public long RowsPerEpoch { get; }

    /// <summary>
    /// A hash of everything the rows are made of (tokens, targets, documents, sequence length, packing, padding,
    /// shuffle seed). Store it with a checkpoint: equal fingerprints mean row k is the same row.
    /// </summary>
    public string Fingerprint => _fingerprint ??= ComputeFingerprint();

    /// <summary>Row <paramref name="index"/> of the endless sequence of epochs; epoch e is rows e·RowsPerEpoch onward.</summary>
    public PackedRow Row(long index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        if (RowsPerEpoch == 0) throw new InvalidOperationException("the dataset has no documents");
        EpochLayout layout = Layout(index / RowsPerEpoch);
        long row = index % RowsPerEpoch;
        var ids = new int[SequenceLength];
        var mask = new bool[SequenceLength];
        var segments = new int[SequenceLength];
        int filled = Packed ? FillPacked(layout, row, ids, mask, segments, out int segment)
                            : FillUnpacked(layout, row, ids, mask, segments, out segment);
        ids.AsSpan(filled).Fill(PadId);
        segments.AsSpan(filled).Fill(segment);
        return new PackedRow(ids, mask, segments);
    }

    public IEnumerable<PackedRow> Rows(long start, long count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        for (long i = 0; i < count; i++) yield return Row(start + i);
    }

    private int FillPacked(EpochLayout layout, long row, int[] ids, bool[] mask, int[] segments, out int segment)
    {
        long start = row * SequenceLength;
        int position = Locate(layout.Starts, start);
        int offset = (int)(start - layout.Starts[position]);
        int filled = 0;
        segment = 0;
        while (filled < SequenceLength && position < layout.Order.Length)
        {
            int document = layout.Order[position];
            int take = Math.Min(SequenceLength - filled, _corpus.Length(document) - offset);
            Copy(document, offset, take, filled, ids, mask, segments, segment);
            filled += take;
            segment++;
            position++;
            offset = 0;
        }
        return filled;
    }

    private int FillUnpacked(EpochLayout layout, long row, int[] ids, bool[] mask, int[] segments, out int segment)
    {
        int position = Locate(layout.Starts, row);
        int document = layout.Order[position];
        int offset = (int)((row - layout.Starts[position]) * SequenceLength);
        int take = Math.Min(SequenceLength, _corpus.Length(document) - offset);
        Copy(document, offset, take, 0, ids, mask, segments, 0);
        segment = 1;
        return take;
    }

    private void Copy(int document, int offset, int count, int at, int[] ids, bool[] mask, int[] segments, int segment)
    {
        _corpus.Ids(document).Slice(offset, count).CopyTo(ids.AsSpan(at));
        _corpus.LossMask(document).Slice(offset, count).CopyTo(mask.AsSpan(at));
        segments.AsSpan(at, count).Fill(segment);
    }

    /// <summary>The last position whose start is at or before <paramref name="value"/>; starts ascend strictly.</summary>
    private static int Locate(long[] starts, long value)
    {
        int found = Array.BinarySearch(starts, value);
        return found >= 0 ? found : ~found - 1;
    }

    private long RowsOf(int length) => (length + SequenceLength - 1) / SequenceLength;

    private EpochLayout Layout(long epoch)
    {
        EpochLayout? last = _lastLayout;
        if (last is not null && last.Epoch == epoch) return last;
        int[] order = (int[])_documents.Clone();
        if (_shuffleSeed is { } seed) DeterministicRandom.For(seed, RandomStreams.EpochOrder, epoch).Shuffle(order);
        var starts = new long[order.Length + 1];
        for (int i = 0; i < order.Length; i++)
        {
            int length = _corpus.Length(order[i]);
            starts[i + 1] = starts[i] + (Packed ? length : RowsOf(length));
        }
        var layout = new EpochLayout(epoch, order, starts);
        _lastLayout = layout;
        return layout;
    }

    private string ComputeFingerprint()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long[] header = [1, SequenceLength, Packed ? 1 : 0, PadId, _shuffleSeed is null ? 0 : 1, _shuffleSeed ?? 0, _documents.Length];
        hash.AppendData(MemoryMarshal.AsBytes(header.AsSpan()));
        foreach (int document in _documents)
        {
            int length = _corpus.Length(document);
            hash.AppendData(MemoryMarshal.AsBytes(new ReadOnlySpan<int>(in length)));
            hash.AppendData(MemoryMarshal.AsBytes(_corpus.Ids(document)));
            hash.AppendData(MemoryMarshal.AsBytes(_corpus.LossMask(document)));
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset())[..32];
    }

    /// <summary>One epoch's document order and where each document starts (in tokens when packed, else in rows).</summary>
    private sealed record EpochLayout(long Epoch, int[] Order, long[] Starts);
}
