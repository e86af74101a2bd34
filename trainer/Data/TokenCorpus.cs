namespace Tune.Trainer.Data;

/// <summary>
/// Every document of a corpus, tokenized once and held as flat arrays: 5 bytes a token (id and target flag), about
/// 1.8 bytes per byte of source code. Packing and shuffling work on document indices, never on the text.
/// </summary>
internal sealed class TokenCorpus
{
    private readonly int[] _ids;
    private readonly bool[] _targets;
    private readonly int[] _starts;

    internal TokenCorpus(int[] ids, bool[] targets, int[] starts, int documentCount)
    {
        _ids = ids;
        _targets = targets;
        _starts = starts;
        DocumentCount = documentCount;
    }

    public int DocumentCount { get; }

    public int Length(int document) => _starts[document + 1] - _starts[document];

    public ReadOnlySpan<int> Ids(int document) => _ids.AsSpan(_starts[document], Length(document));

    /// <summary>Per token of the document: true where the token is a training target.</summary>
    public ReadOnlySpan<bool> LossMask(int document) => _targets.AsSpan(_starts[document], Length(document));
}
