using Parquet;
using Parquet.Serialization;
using System.Text.Json.Serialization;
using Tune.Model.Tokenization;
using Tune.Tests.Formats;
using Tune.Trainer.Data;

namespace Tune.Tests.Trainer;

/// <summary>JSONL and Parquet readers on files the tests write: records in order, and bad rows named by file, line or row, and field.</summary>
public sealed class ReaderTests
{
    [Fact]
    public async Task JsonlReadsEachKindLineByLineSkippingBlankLines()
    {
        using var dir = new TempDirectory();
        string path = dir.File("mixed.jsonl");
        File.WriteAllLines(path,
        [
            """{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "id": 7}""",
            "",
            """{"messages": [{"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"}]}""",
        ]);
        var chats = await Read(path, RecordKind.Messages);
        Assert.Equal([1L, 3L], chats.Select(r => r.Origin.Line!.Value));
        var first = Assert.IsType<MessagesRecord>(chats[0]);
        Assert.Equal([new(ChatRole.System, "s"), new(ChatRole.User, "q"), new ChatMessage(ChatRole.Assistant, "a")], first.Messages);

        File.WriteAllText(path, """{"prompt": "p", "completion": "c", "text": "t"}""" + "\n" + """{"instruction": "i", "output": "o", "text": "u"}""");
        Assert.Equal(new TextRecord(new RecordOrigin(path, Line: 2), "u"), (await Read(path, RecordKind.Text))[1]);
        File.WriteAllText(path, """{"prompt": "p", "completion": "c"}""");
        Assert.Equal(new PromptCompletionRecord(new RecordOrigin(path, Line: 1), "p", "c"), (await Read(path, RecordKind.PromptCompletion)).Single());
        File.WriteAllText(path, """{"instruction": "i", "output": "o"}""");
        Assert.Equal(new InstructionOutputRecord(new RecordOrigin(path, Line: 1), "i", "o"), (await Read(path, RecordKind.InstructionOutput)).Single());
    }

    [Theory]
    [InlineData("""{"prompt": "p"}""", RecordKind.PromptCompletion, "completion", "missing or null")]
    [InlineData("""{"prompt": "p", "completion": 3}""", RecordKind.PromptCompletion, "completion", "expected a string, got a number")]
    [InlineData("""{"content": "code"}""", RecordKind.Text, "text", "missing or null")]
    [InlineData("""{"messages": [{"role": "user", "content": "q"}, {"role": "bot", "content": "a"}]}""", RecordKind.Messages, "messages[1].role", "\"bot\" is not system, user or assistant")]
    [InlineData("""{"messages": [{"role": "user", "content": "q"}, {"role": "assistant"}]}""", RecordKind.Messages, "messages[1].content", "missing")]
    [InlineData("""{"messages": [{"role": "user", "content": "q"}]}""", RecordKind.Messages, "messages", "no assistant message")]
    [InlineData("""{"messages": "hi"}""", RecordKind.Messages, "messages", "expected an array")]
    [InlineData("{\"instruction\": \"i\", \"output\": \"o\"", RecordKind.InstructionOutput, null, "not valid JSON")]
    [InlineData("""["i", "o"]""", RecordKind.InstructionOutput, null, "expected a JSON object, got an array")]
    public async Task ABadJsonlRowNamesFileLineAndField(string badRow, RecordKind kind, string? field, string problem)
    {
        using var dir = new TempDirectory();
        string path = dir.File("data.jsonl");
        string good = kind switch
        {
            RecordKind.Messages => """{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}""",
            RecordKind.Text => """{"text": "t"}""",
            RecordKind.PromptCompletion => """{"prompt": "p", "completion": "c"}""",
            _ => """{"instruction": "i", "output": "o"}""",
        };
        File.WriteAllLines(path, [good, "", good, badRow, good]);

        var e = await Assert.ThrowsAsync<DataFormatException>(() => Read(path, kind));
        Assert.Equal(4, e.Origin.Line);
        Assert.Equal(field, e.Field);
        Assert.Contains(problem, e.Message);
        Assert.StartsWith(field is null ? $"{path}:4: " : $"{path}:4: {field}: ", e.Message);
    }

    [Fact]
    public async Task ParquetStringColumnsAreReadRowGroupByRowGroupInOrder()
    {
        using var dir = new TempDirectory();
        string path = dir.File("stack.parquet");
        var rows = Enumerable.Range(0, 7).Select(i => new CodeRow { Content = $"print({i})\n", Size = i }).ToList();
        await ParquetSerializer.SerializeAsync(rows, path, new ParquetOptions { RowGroupSize = 3 });
        await using (var reader = await ParquetReader.CreateAsync(path)) Assert.Equal(3, reader.RowGroupCount);

        var records = await Read(path, RecordKind.Text, textField: "content");
        Assert.Equal(rows.Select(r => r.Content), records.Cast<TextRecord>().Select(r => r.Text));
        Assert.Equal(Enumerable.Range(0, 7).Select(i => (long?)i), records.Select(r => r.Origin.Row));
    }

    [Fact]
    public async Task ParquetMessagesColumnIsAListOfRoleContentStructs()
    {
        using var dir = new TempDirectory();
        string path = dir.File("chat.parquet");
        var rows = Enumerable.Range(0, 5).Select(i => new ChatRow
        {
            Id = i,
            Messages = [new() { Role = "user", Content = $"q{i}" }, new() { Role = "assistant", Content = $"a{i}" }],
        }).ToList();
        await ParquetSerializer.SerializeAsync(rows, path, new ParquetOptions { RowGroupSize = 2 });

        var records = (await Read(path, RecordKind.Messages)).Cast<MessagesRecord>().ToList();
        Assert.Equal(5, records.Count);
        Assert.Equal([new ChatMessage(ChatRole.User, "q3"), new ChatMessage(ChatRole.Assistant, "a3")], records[3].Messages);
        Assert.Equal(3, records[3].Origin.Row);
    }

    [Fact]
    public async Task ABadParquetRowOrColumnNamesFileRowAndField()
    {
        using var dir = new TempDirectory();
        string path = dir.File("pc.parquet");
        var rows = Enumerable.Range(0, 6).Select(i => new PromptRow { Prompt = $"p{i}", Completion = i == 4 ? null : $"c{i}" }).ToList();
        await ParquetSerializer.SerializeAsync(rows, path, new ParquetOptions { RowGroupSize = 3 });

        var nullValue = await Assert.ThrowsAsync<DataFormatException>(() => Read(path, RecordKind.PromptCompletion));
        Assert.Equal((4L, "completion"), (nullValue.Origin.Row!.Value, nullValue.Field));
        Assert.StartsWith($"{path}: row 4: completion: null", nullValue.Message);

        var noColumn = await Assert.ThrowsAsync<DataFormatException>(() => Read(path, RecordKind.InstructionOutput));
        Assert.Equal("instruction", noColumn.Field);
        Assert.Contains("no such column (columns: prompt, completion)", noColumn.Message);

        var notChat = await Assert.ThrowsAsync<DataFormatException>(() => Read(path, RecordKind.Messages));
        Assert.Equal("messages", notChat.Field);

        File.WriteAllText(dir.File("fake.parquet"), "not parquet at all");
        var notParquet = await Assert.ThrowsAsync<DataFormatException>(() => Read(dir.File("fake.parquet"), RecordKind.Text));
        Assert.Contains("not a Parquet file", notParquet.Message);
    }

    private static async Task<List<TrainingRecord>> Read(string path, RecordKind kind, string textField = "text")
    {
        var source = new Tune.Trainer.Recipes.DataSourceRecipe { Path = path, Kind = kind, TextField = textField };
        var records = new List<TrainingRecord>();
        await foreach (TrainingRecord record in RecordSources.ReadAsync(source, "data.train.0", "/", _ => { }, CancellationToken.None))
            records.Add(record);
        return records;
    }

    public sealed class CodeRow
    {
        [JsonPropertyName("content")] public string? Content { get; set; }
        [JsonPropertyName("size")] public long Size { get; set; }
    }

    public sealed class PromptRow
    {
        [JsonPropertyName("prompt")] public string? Prompt { get; set; }
        [JsonPropertyName("completion")] public string? Completion { get; set; }
    }

    public sealed class ChatRow
    {
        [JsonPropertyName("id")] public int Id { get; set; }
        [JsonPropertyName("messages")] public List<ChatMessageRow>? Messages { get; set; }
    }

    public sealed class ChatMessageRow
    {
        [JsonPropertyName("role")] public string? Role { get; set; }
        [JsonPropertyName("content")] public string? Content { get; set; }
    }
}
