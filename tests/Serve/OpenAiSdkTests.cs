using System.ClientModel;
using System.Text;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Chat;
using Tune.Model.Tokenization;
using TuneChatMessage = Tune.Model.Tokenization.ChatMessage;
using ChatMessage = OpenAI.Chat.ChatMessage;

namespace Tune.Tests.Serve;

/// <summary>One server on loopback shared by the class; the official OpenAI .NET SDK and raw HTTP as clients.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public ServerClient Client { get; private set; } = null!;

    public async Task InitializeAsync() => Client = await ServerClient.StartAsync();

    public async Task DisposeAsync() => await Client.DisposeAsync();
}

[Collection("torch")]
public sealed class OpenAiSdkTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private ServerClient Client => fixture.Client;

    private ChatClient Chat(string? model = null) => new(model ?? Client.ModelId, new ApiKeyCredential("unused"),
        new OpenAIClientOptions { Endpoint = new Uri(Client.Server.Address, "/v1") });

    private static int[] ChatIds(string user) =>
        ChatPrompt.Build(ServeModels.Tokenizer, [new TuneChatMessage(ChatRole.User, user)], addGenerationPrompt: true).Ids;

    [Fact]
    public async Task GreedyChatEqualsTheGeneratorAndReportsUsage()
    {
        ChatCompletion completion = (await Chat().CompleteChatAsync([new UserChatMessage("Write a sort function.")],
            new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 10 })).Value;

        int[] prompt = ChatIds("Write a sort function.");
        string expected = ServeModels.ColdRun(prompt, 10);
        Assert.Equal(expected, completion.Content[0].Text);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.Equal(prompt.Length, completion.Usage.InputTokenCount);
        Assert.InRange(completion.Usage.OutputTokenCount, 1, 10);
        Assert.Equal(completion.Usage.InputTokenCount + completion.Usage.OutputTokenCount, completion.Usage.TotalTokenCount);
        Assert.Equal(completion.Usage.OutputTokenCount == 10 ? ChatFinishReason.Length : ChatFinishReason.Stop, completion.FinishReason);
        Assert.StartsWith("chatcmpl-", completion.Id);
    }

    [Fact]
    public async Task StreamedChatIsTheSameTextWithUsageAtTheEnd()
    {
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 12 };
        List<ChatMessage> messages = [new SystemChatMessage("You are terse."), new UserChatMessage("hello")];
        string whole = (await Chat().CompleteChatAsync(messages, options)).Value.Content[0].Text;

        var streamed = new StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        int updates = 0;
        await foreach (StreamingChatCompletionUpdate update in Chat().CompleteChatStreamingAsync(messages, options))
        {
            updates++;
            foreach (ChatMessageContentPart part in update.ContentUpdate) streamed.Append(part.Text);
            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }
        Assert.Equal(whole, streamed.ToString());
        Assert.True(updates >= 3, $"{updates} updates: expected text chunks, a finish chunk and a usage chunk");
        Assert.NotNull(finish);
        Assert.NotNull(usage);
        Assert.Equal(ChatPrompt.Build(ServeModels.Tokenizer,
            [new TuneChatMessage(ChatRole.System, "You are terse."), new TuneChatMessage(ChatRole.User, "hello")], true).Ids.Length,
            usage!.InputTokenCount);
    }

    [Fact]
    public async Task TheRawStreamHasOllamasChunkOrderAndEndsWithDone()
    {
        var body = new JsonObject
        {
            ["model"] = Client.ModelId, ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }),
            ["max_tokens"] = 5, ["temperature"] = 0, ["stream"] = true, ["stream_options"] = new JsonObject { ["include_usage"] = true },
        };
        var (status, _, text) = await Client.PostAsync("/v1/chat/completions", body);
        Assert.Equal(200, status);
        List<string> events = ServerClient.Events(text);
        Assert.Equal("[DONE]", events[^1]);
        List<JsonNode> chunks = events[..^1].Select(e => JsonNode.Parse(e)!).ToList();
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", (string)c["object"]!));
        Assert.Equal("assistant", (string?)chunks[0]["choices"]![0]!["delta"]!["role"]);
        Assert.All(chunks.Skip(1), c => Assert.Null(c["choices"]!.AsArray().FirstOrDefault()?["delta"]?["role"]));
        JsonNode finish = chunks[^2];
        Assert.Empty(finish["choices"]![0]!["delta"]!.AsObject());
        Assert.Contains((string)finish["choices"]![0]!["finish_reason"]!, new[] { "stop", "length" });
        Assert.Empty(chunks[^1]["choices"]!.AsArray());
        int completionTokens = (int)chunks[^1]["usage"]!["completion_tokens"]!;
        Assert.InRange(completionTokens, 1, 5);
        Assert.Equal(completionTokens == 5 ? "length" : "stop", (string)finish["choices"]![0]!["finish_reason"]!);

        body["stream_options"] = null;
        (_, _, text) = await Client.PostAsync("/v1/chat/completions", body);
        Assert.DoesNotContain("\"usage\"", text);
        Assert.EndsWith("data: [DONE]\n\n", text);
    }

    [Fact]
    public async Task StopStringsCutTheTextAndFinishWithStop()
    {
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 24 };
        string full = (await Chat().CompleteChatAsync([new UserChatMessage("count")], options)).Value.Content[0].Text;
        Assert.True(full.Length >= 6, $"the greedy answer `{full}` is too short to cut");
        string stop = full.Substring(3, 2);
        options.StopSequences.Add(stop);
        ChatCompletion cut = (await Chat().CompleteChatAsync([new UserChatMessage("count")], options)).Value;
        Assert.Equal(full[..full.IndexOf(stop, StringComparison.Ordinal)], cut.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, cut.FinishReason);
    }

    [Fact]
    public async Task TheSameSeedSamplesTheSameText()
    {
        ChatCompletionOptions Options(long seed) => new() { Temperature = 1.0f, TopP = 0.95f, MaxOutputTokenCount = 12,
#pragma warning disable OPENAI001
            Seed = seed };
#pragma warning restore OPENAI001
        async Task<string> Sample(long seed) => (await Chat().CompleteChatAsync([new UserChatMessage("hi")], Options(seed))).Value.Content[0].Text;
        string first = await Sample(5);
        Assert.Equal(first, await Sample(5));
        var others = new HashSet<string> { await Sample(6), await Sample(7), await Sample(8) };
        Assert.True(others.Any(o => o != first), "three other seeds all sampled the same text");
    }

    [Fact]
    public async Task TheModelNameChoosesTheAdapterPerRequest()
    {
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 10 };
        int[] prompt = ChatIds("def fib(n):");
        async Task<string> Ask(string model) => (await Chat(model).CompleteChatAsync([new UserChatMessage("def fib(n):")], options)).Value.Content[0].Text;

        string baseText = ServeModels.ColdRun(prompt, 10), adapterText = ServeModels.ColdRun(prompt, 10, ServeModels.Adapter);
        Assert.NotEqual(baseText, adapterText);
        Assert.Equal(adapterText, await Ask("styled"));
        Assert.Equal(baseText, await Ask(Client.ModelId));
        Assert.Equal(adapterText, await Ask("styled"));

        var (status, body, _) = await Client.PostAsync("/v1/completions", new JsonObject
        {
            ["model"] = "styled", ["prompt"] = "x", ["suffix"] = "y", ["max_tokens"] = 6, ["temperature"] = 0,
        });
        Assert.Equal(200, status);
        Assert.Equal(ServeModels.ColdRun(FimPrompt.Build(ServeModels.Tokenizer, "x", "y").Ids, 6, ServeModels.Adapter),
            (string)body!["choices"]![0]!["text"]!);
    }

    [Fact]
    public async Task UnknownModelsAre404ThroughTheSdk()
    {
        var e = await Assert.ThrowsAsync<ClientResultException>(() => Chat("no-such-model").CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(404, e.Status);
        Assert.Contains("no-such-model", e.Message);
    }

    [Fact]
    public async Task ModelsHealthAndMetricsDescribeTheServer()
    {
        JsonNode models = JsonNode.Parse(await Client.GetTextAsync("/v1/models"))!;
        Assert.Equal("list", (string)models["object"]!);
        Assert.Equal(new[] { Client.ModelId, "styled" }, models["data"]!.AsArray().Select(m => (string)m!["id"]!));
        Assert.Equal("ok", (string)JsonNode.Parse(await Client.GetTextAsync("/health"))!["status"]!);

        double before = await Client.MetricAsync("tune_tokens_predicted_total");
        double requests = await Client.MetricAsync("tune_requests_total");
        ChatCompletion c = (await Chat().CompleteChatAsync([new UserChatMessage("metrics")], new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 4 })).Value;
        Assert.Equal(before + c.Usage.OutputTokenCount, await Client.MetricAsync("tune_tokens_predicted_total"));
        Assert.Equal(requests + 1, await Client.MetricAsync("tune_requests_total"));
        string metrics = await Client.GetTextAsync("/metrics");
        foreach (string name in new[] { "tune_prompt_tokens_total", "tune_predicted_tokens_seconds", "tune_requests_queued",
                     "tune_requests_processing", "tune_kv_cache_usage_ratio", "tune_kv_cache_tokens" })
            Assert.Contains($"# TYPE {name} ", metrics);
        Assert.True(await Client.MetricAsync("tune_kv_cache_tokens") > 0, "the slot keeps its cache for prefix reuse");
        Assert.True(await Client.MetricAsync("tune_predicted_tokens_seconds") > 0);
        Assert.Equal(0, await Client.MetricAsync("tune_requests_processing"));
    }
}
