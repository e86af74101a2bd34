using System.Text;

namespace Tune.Model.Tokenization;

/// <summary>
/// Assembles a prompt from control tokens, inserted by id, and text, encoded as untrusted text. Text between two
/// control tokens is encoded as one string: Hugging Face tokenizes the rendered template, where "User: " and the
/// message that follows it share pre-tokenizer pieces (" Hi" is one token, not " " and "Hi").
/// </summary>
internal sealed class PromptBuilder(DeepSeekTokenizer tokenizer)
{
    private readonly List<int> _ids = [];
    private readonly StringBuilder _rendered = new();
    private readonly StringBuilder _pendingText = new();

    public PromptBuilder Control(int id)
    {
        EncodePendingText();
        _ids.Add(id);
        _rendered.Append(tokenizer.IdToToken(id));
        return this;
    }

    public PromptBuilder Text(string text)
    {
        _pendingText.Append(text);
        _rendered.Append(text);
        return this;
    }

    public EncodedPrompt Build()
    {
        EncodePendingText();
        return new EncodedPrompt([.. _ids], _rendered.ToString());
    }

    private void EncodePendingText()
    {
        if (_pendingText.Length == 0) return;
        tokenizer.EncodeText(_pendingText.ToString(), _ids);
        _pendingText.Clear();
    }
}
