using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;

namespace Tune.Trainer.Data;

/// <summary>JSONL, one object per line, read line by line; blank lines are skipped.</summary>
internal static class JsonlRecordReader
{
    public static async IAsyncEnumerable<TrainingRecord> ReadAsync(
        string path, RecordKind kind, string textField, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true,
            new FileStreamOptions { Options = FileOptions.SequentialScan | FileOptions.Asynchronous, BufferSize = 1 << 16 });
        long line = 0;
        while (await reader.ReadLineAsync(cancellationToken) is { } text)
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            yield return Parse(text, new RecordOrigin(path, Line: line), kind, textField);
        }
    }

    private static TrainingRecord Parse(string text, RecordOrigin origin, RecordKind kind, string textField)
    {
        JsonDocument document;
        try { document = JsonDocument.Parse(text); }
        catch (JsonException e) { throw new DataFormatException(origin, null, $"not valid JSON: {e.Message}", e); }
        using (document)
        {
            JsonElement row = document.RootElement;
            if (row.ValueKind != JsonValueKind.Object)
                throw new DataFormatException(origin, null, $"expected a JSON object, got {Kind(row)}");
            return kind switch
            {
                RecordKind.Text => new TextRecord(origin, RequiredString(row, textField, origin)),
                RecordKind.PromptCompletion => new PromptCompletionRecord(origin,
                    RequiredString(row, "prompt", origin), RequiredString(row, "completion", origin)),
                RecordKind.InstructionOutput => new InstructionOutputRecord(origin,
                    RequiredString(row, "instruction", origin), RequiredString(row, "output", origin)),
                RecordKind.Messages => Messages(row, origin),
                _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown record kind"),
            };
        }
    }

    private static MessagesRecord Messages(JsonElement row, RecordOrigin origin)
    {
        const string field = "messages";
        if (!row.TryGetProperty(field, out JsonElement list)) throw new DataFormatException(origin, field, "missing");
        if (list.ValueKind != JsonValueKind.Array)
            throw new DataFormatException(origin, field, $"expected an array of {{role, content}}, got {Kind(list)}");
        var messages = new List<(string?, string?)>();
        int i = 0;
        foreach (JsonElement message in list.EnumerateArray())
        {
            if (message.ValueKind != JsonValueKind.Object)
                throw new DataFormatException(origin, $"{field}[{i}]", $"expected an object {{role, content}}, got {Kind(message)}");
            messages.Add((OptionalString(message, "role", $"{field}[{i}].role", origin),
                          OptionalString(message, "content", $"{field}[{i}].content", origin)));
            i++;
        }
        return ChatRoles.Messages(origin, field, messages);
    }

    private static string RequiredString(JsonElement row, string name, RecordOrigin origin) =>
        OptionalString(row, name, name, origin) ?? throw new DataFormatException(origin, name, "missing or null");

    private static string? OptionalString(JsonElement row, string name, string field, RecordOrigin origin)
    {
        if (!row.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null) return null;
        return value.ValueKind == JsonValueKind.String ? value.GetString()
            : throw new DataFormatException(origin, field, $"expected a string, got {Kind(value)}");
    }

    private static string Kind(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };
}
