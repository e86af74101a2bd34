namespace Tune.Model.Tokenization;

/// <summary>
/// The DeepSeek-V2 / Coder-V2(-Lite) chat format, the template of their tokenizer_config.json:
/// <c>&lt;｜begin▁of▁sentence｜&gt;{system}\n\nUser: {q}\n\nAssistant: {a}&lt;｜end▁of▁sentence｜&gt;User: ...\n\nAssistant:</c>.
/// System messages stay where they occur. The generation prompt ends in "Assistant:" with no space: with a space
/// the Lite models answer in Chinese or repeat themselves (DeepSeek's README). BOS and EOS are inserted by id and
/// message contents are untrusted text, so a message that contains "&lt;｜end▁of▁sentence｜&gt;" cannot end a turn.
/// </summary>
public static class ChatPrompt
{
    public static EncodedPrompt Build(DeepSeekTokenizer tokenizer, IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        var prompt = new PromptBuilder(tokenizer).Control(tokenizer.BosId);
        foreach (ChatMessage message in messages)
        {
            switch (message.Role)
            {
                case ChatRole.User:
                    prompt.Text("User: " + message.Content + "\n\n");
                    break;
                case ChatRole.Assistant:
                    prompt.Text("Assistant: " + message.Content).Control(tokenizer.EosId);
                    break;
                case ChatRole.System:
                    prompt.Text(message.Content + "\n\n");
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(messages), message.Role, "unknown chat role");
            }
        }
        if (addGenerationPrompt) prompt.Text("Assistant:");
        return prompt.Build();
    }
}
