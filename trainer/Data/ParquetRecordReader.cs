using System.Runtime.CompilerServices;
using System.Text.Json.Serialization;
using Parquet;
using Parquet.Schema;
using Parquet.Serialization;

namespace Tune.Trainer.Data;

/// <summary>
/// Parquet, one row group in memory at a time (Parquet.Net reads no smaller unit). String columns for text,
/// prompt/completion and instruction/output; a <c>messages</c> column of <c>list&lt;struct&lt;role, content&gt;&gt;</c>,
/// the layout Hugging Face chat datasets use, for chats. Rows are numbered from 0 over the whole file.
/// </summary>
internal static class ParquetRecordReader
{
    public static async IAsyncEnumerable<TrainingRecord> ReadAsync(
        string path, RecordKind kind, string textField, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using FileStream stream = File.OpenRead(path);
        ParquetReader reader = await Open(stream, path, cancellationToken);
        await using (reader)
        {
            if (kind == RecordKind.Messages)
            {
                CheckMessagesColumn(reader.Schema, path);
                long row = 0;
                for (int group = 0; group < reader.RowGroupCount; group++)
                {
                    stream.Position = 0;
                    DeserializationResult<ChatRow> chats = await ParquetSerializer.DeserializeAsync<ChatRow>(
                        stream, rowGroupIndex: group, cancellationToken: cancellationToken);
                    foreach (ChatRow chat in chats.Data)
                    {
                        var origin = new RecordOrigin(path, Row: row++);
                        List<ChatRowMessage> messages = chat.Messages
                            ?? throw new DataFormatException(origin, ChatRow.Column, "null");
                        yield return ChatRoles.Messages(origin, ChatRow.Column, [.. messages.Select(m => (m.Role, m.Content))]);
                    }
                }
                yield break;
            }

            string[] names = kind switch
            {
                RecordKind.Text => [textField],
                RecordKind.PromptCompletion => ["prompt", "completion"],
                RecordKind.InstructionOutput => ["instruction", "output"],
                _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown record kind"),
            };
            DataField[] fields = [.. names.Select(n => StringColumn(reader.Schema, n, path))];
            long first = 0;
            for (int group = 0; group < reader.RowGroupCount; group++)
            {
                using ParquetRowGroupReader rowGroup = reader.OpenRowGroupReader(group);
                int count = checked((int)rowGroup.RowCount);
                var columns = new string?[fields.Length][];
                for (int c = 0; c < fields.Length; c++)
                {
                    columns[c] = new string?[count];
                    await rowGroup.ReadAsync(fields[c], columns[c].AsMemory(), cancellationToken: cancellationToken);
                }
                for (int i = 0; i < count; i++)
                {
                    var origin = new RecordOrigin(path, Row: first + i);
                    string Value(int c) => columns[c][i] ?? throw new DataFormatException(origin, names[c], "null");
                    yield return kind switch
                    {
                        RecordKind.Text => new TextRecord(origin, Value(0)),
                        RecordKind.PromptCompletion => new PromptCompletionRecord(origin, Value(0), Value(1)),
                        _ => new InstructionOutputRecord(origin, Value(0), Value(1)),
                    };
                }
                first += count;
            }
        }
    }

    private static async Task<ParquetReader> Open(Stream stream, string path, CancellationToken cancellationToken)
    {
        try { return await ParquetReader.CreateAsync(stream, leaveStreamOpen: true, cancellationToken: cancellationToken); }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException)
        {
            throw new DataFormatException(new RecordOrigin(path), null, $"not a Parquet file: {e.Message}", e);
        }
    }

    private static DataField StringColumn(ParquetSchema schema, string name, string path)
    {
        var origin = new RecordOrigin(path);
        Field field = schema.Fields.FirstOrDefault(f => f.Name == name)
            ?? throw new DataFormatException(origin, name, $"no such column (columns: {string.Join(", ", schema.Fields.Select(f => f.Name))})");
        if (field is not DataField data || (data.ClrType != typeof(string) && data.ClrType != typeof(ReadOnlyMemory<char>)))
            throw new DataFormatException(origin, name, $"expected a string column, got {Describe(field)}");
        return data;
    }

    private static void CheckMessagesColumn(ParquetSchema schema, string path)
    {
        var origin = new RecordOrigin(path);
        Field field = schema.Fields.FirstOrDefault(f => f.Name == ChatRow.Column)
            ?? throw new DataFormatException(origin, ChatRow.Column, $"no such column (columns: {string.Join(", ", schema.Fields.Select(f => f.Name))})");
        bool chatShaped = field is ListField { Item: StructField item }
            && item.Fields.Any(f => f is DataField { Name: "role" })
            && item.Fields.Any(f => f is DataField { Name: "content" });
        if (!chatShaped)
            throw new DataFormatException(origin, ChatRow.Column, $"expected list<struct<role: string, content: string>>, got {Describe(field)}");
    }

    private static string Describe(Field field) => field is DataField data ? $"{data.ClrType.Name} data" : field.SchemaType.ToString();

    /// <summary>The shape ParquetSerializer maps the messages column onto; other columns are not read.</summary>
    private sealed class ChatRow
    {
        public const string Column = "messages";

        [JsonPropertyName(Column)]
        public List<ChatRowMessage>? Messages { get; set; }
    }

    private sealed class ChatRowMessage
    {
        [JsonPropertyName("role")]
        public string? Role { get; set; }

        [JsonPropertyName("content")]
        public string? Content { get; set; }
    }
}
