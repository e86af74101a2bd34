using Tune.Model.Tokenization;

namespace Tune.Trainer.Data;

/// <summary>
/// One rendered document: token ids and, per token, whether it is a training target. Control tokens go in by id;
/// text is encoded as untrusted text, so a document that contains "&lt;｜fim▁hole｜&gt;" cannot inject the marker.
/// Consecutive text with the same role is encoded as one string, as <see cref="ChatPrompt"/> does; text is cut
/// only where targets start or stop, so the target tokens are the ones the model emits after seeing the prompt.
/// </summary>
internal sealed class DocumentBuffer(DeepSeekTokenizer tokenizer)
{
    private readonly List<string> _pending = [];
    private bool _pendingTarget;

    public List<int> Ids { get; } = [];

    public List<bool> Targets { get; } = [];

    public void Clear()
    {
        Ids.Clear();
        Targets.Clear();
        _pending.Clear();
    }

    public DocumentBuffer Control(int id, bool target)
    {
        Flush();
        Ids.Add(id);
        Targets.Add(target);
        return this;
    }

    public DocumentBuffer Text(string text, bool target)
    {
        if (_pending.Count > 0 && _pendingTarget != target) Flush();
        _pending.Add(text);
        _pendingTarget = target;
        return this;
    }

    /// <summary>Encodes the text still pending; call before reading <see cref="Ids"/>.</summary>
    public void Flush()
    {
        if (_pending.Count == 0) return;
        int before = Ids.Count;
        tokenizer.EncodeText(_pending.Count == 1 ? _pending[0] : string.Concat(_pending), Ids);
        for (int i = before; i < Ids.Count; i++) Targets.Add(_pendingTarget);
        _pending.Clear();
    }
}
