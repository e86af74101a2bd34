using System.Runtime.InteropServices;

namespace Tune.Trainer.Data;

/// <summary>Appends documents to growing arrays; <see cref="Build"/> hands them over without a copy.</summary>
internal sealed class TokenCorpusBuilder
{
    // .NET arrays stop a little short of int.MaxValue elements; document offsets are ints to keep the index small.
    private const int MaxTokens = 0x7FFFFFC7;

    private int[] _ids = new int[1 << 16];
    private bool[] _targets = new bool[1 << 16];
    private int[] _starts = new int[1 << 10];
    private int _tokens;
    private int _documents;

    public int DocumentCount => _documents;

    public void Add(DocumentBuffer document) =>
        Add(CollectionsMarshal.AsSpan(document.Ids), CollectionsMarshal.AsSpan(document.Targets));

    public void Add(ReadOnlySpan<int> ids, ReadOnlySpan<bool> targets)
    {
        if (ids.Length != targets.Length) throw new InvalidOperationException("a document's ids and targets differ in length");
        if ((long)_tokens + ids.Length > MaxTokens)
            throw new InvalidOperationException($"the corpus is over {MaxTokens:N0} tokens; split the data into smaller runs");
        EnsureTokens(_tokens + ids.Length);
        ids.CopyTo(_ids.AsSpan(_tokens));
        targets.CopyTo(_targets.AsSpan(_tokens));
        if (_documents + 2 > _starts.Length) Array.Resize(ref _starts, _starts.Length * 2);
        _starts[_documents] = _tokens;
        _tokens += ids.Length;
        _documents++;
        _starts[_documents] = _tokens;
    }

    public TokenCorpus Build() => new(_ids, _targets, _starts, _documents);

    private void EnsureTokens(int needed)
    {
        if (needed <= _ids.Length) return;
        int size = (int)Math.Min(MaxTokens, Math.Max(needed, (long)_ids.Length * 2));
        Array.Resize(ref _ids, size);
        Array.Resize(ref _targets, size);
    }
}
