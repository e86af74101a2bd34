using Tune.Model.Tokenization;

namespace Tune.Trainer.Data;

/// <summary>Turns the role/content pairs of a <c>messages</c> field into a chat, with errors that name the message.</summary>
internal static class ChatRoles
{
    public static MessagesRecord Messages(RecordOrigin origin, string field, IReadOnlyList<(string? Role, string? Content)> messages)
    {
        if (messages.Count == 0) throw new DataFormatException(origin, field, "no messages");
        var chat = new ChatMessage[messages.Count];
        bool answered = false;
        for (int i = 0; i < messages.Count; i++)
        {
            var (role, content) = messages[i];
            ChatRole parsed = role switch
            {
                "system" => ChatRole.System,
                "user" => ChatRole.User,
                "assistant" => ChatRole.Assistant,
                null => throw new DataFormatException(origin, $"{field}[{i}].role", "missing"),
                _ => throw new DataFormatException(origin, $"{field}[{i}].role", $"\"{role}\" is not system, user or assistant"),
            };
            if (content is null) throw new DataFormatException(origin, $"{field}[{i}].content", "missing");
            answered |= parsed == ChatRole.Assistant;
            chat[i] = new ChatMessage(parsed, content);
        }
        // Only assistant turns are targets: a chat without one would train nothing.
        if (!answered) throw new DataFormatException(origin, field, "no assistant message");
        return new MessagesRecord(origin, chat);
    }
}
