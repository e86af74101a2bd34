using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Tune.Model.Tokenization;
using Tune.Serve;

namespace Tune.Tests.Serve;

/// <summary>Prefix reuse, disconnects, the queue, the context limit and every error status, each on its own server.</summary>
[Collection("torch")]
public sealed class EngineAndErrorTests
{
    private const string Prefix = "import os\n\ndef read(path):\n    with open(path) as f:\n        ", Suffix = "\n\nprint(read('a'))\n";

    private static JsonObject Infill(string prefix) => new()
    {
        ["input_prefix"] = prefix, ["input_suffix"] = Suffix, ["n_predict"] = 8, ["temperature"] = 0,
    };

    private static int Shared(int[] a, int[] b)
    {
        int n = 0;
        while (n < a.Length && n < b.Length && a[n] == b[n]) n++;
        return n;
    }

    [Fact]
    public async Task ASecondFimRequestComputesOnlyTheTokensAfterTheSharedPrefix()
    {
        await using ServerClient client = await ServerClient.StartAsync();
        DeepSeekTokenizer t = ServeModels.Tokenizer;
        string typed = Prefix + "data = f.read()\n        ";
        int[] first = FimPrompt.Build(t, Prefix, Suffix).Ids, second = FimPrompt.Build(t, typed, Suffix).Ids;
        int shared = Shared(first, second);
        Assert.True(shared > 10 && shared < second.Length - 5, $"the prompts share {shared} of {second.Length} tokens");

        var cold = await client.PostAsync("/infill", Infill(Prefix));
        Assert.Equal(0, (int)cold.Body!["tokens_cached"]!);
        Assert.Equal(first.Length, (int)cold.Body["timings"]!["prompt_n"]!);

        var warm = await client.PostAsync("/infill", Infill(typed));
        Assert.Equal(shared, (int)warm.Body!["tokens_cached"]!);
        Assert.Equal(second.Length - shared, (int)warm.Body["timings"]!["prompt_n"]!);
        Assert.Equal(ServeModels.ColdRun(second, 8), (string)warm.Body["content"]!);

        // The very same request again recomputes only its last prompt token, and says the same.
        var again = await client.PostAsync("/infill", Infill(typed));
        Assert.Equal(1, (int)again.Body!["timings"]!["prompt_n"]!);
        Assert.Equal((string)warm.Body["content"]!, (string)again.Body["content"]!);

        // An adapter's cache is not the base model's: the same prompt under the adapter starts cold.
        JsonObject styled = Infill(typed);
        styled["model"] = "styled";
        var other = await client.PostAsync("/infill", styled);
        Assert.Equal(0, (int)other.Body!["tokens_cached"]!);
        Assert.Equal(ServeModels.ColdRun(second, 8, ServeModels.Adapter), (string)other.Body["content"]!);
        Assert.Equal(shared + second.Length - 1, await client.MetricAsync("tune_prompt_tokens_cached_total"));
    }

    [Fact]
    public async Task SwitchingBackFromAnAdapterWithRoutersRestoresTheBaseRouters()
    {
        await using ServerClient client = await ServerClient.StartAsync(ServerClient.Options() with
        {
            Adapters = new Dictionary<string, string> { ["routed"] = ServeModels.RouterAdapter },
        });
        int[] prompt = FimPrompt.Build(ServeModels.Tokenizer, "while True:\n    ", "\n").Ids;
        async Task<string> Ask(string model) => (string)(await client.PostAsync("/v1/completions", new JsonObject
        {
            ["model"] = model, ["prompt"] = "while True:\n    ", ["suffix"] = "\n", ["max_tokens"] = 10, ["temperature"] = 0,
        })).Body!["choices"]![0]!["text"]!;
        string baseText = ServeModels.ColdRun(prompt, 10), routedText = ServeModels.ColdRun(prompt, 10, ServeModels.RouterAdapter);
        Assert.NotEqual(baseText, routedText);
        Assert.Equal(routedText, await Ask("routed"));
        Assert.Equal(baseText, await Ask(client.ModelId));
    }

    [Fact]
    public async Task ParallelSlotsServeConcurrentRequestsWithTheirOwnOutputs()
    {
        await using ServerClient client = await ServerClient.StartAsync(ServerClient.Options() with { Parallel = 3 });
        string[] prefixes = ["def a():\n    ", "class B:\n    ", "for i in range(3):\n    "];
        var answers = await Task.WhenAll(prefixes.Select(p => client.PostAsync("/v1/completions", new JsonObject
        {
            ["prompt"] = p, ["suffix"] = "\n", ["max_tokens"] = 12, ["temperature"] = 0,
        })));
        for (int i = 0; i < prefixes.Length; i++)
            Assert.Equal(ServeModels.ColdRun(FimPrompt.Build(ServeModels.Tokenizer, prefixes[i], "\n").Ids, 12),
                (string)answers[i].Body!["choices"]![0]!["text"]!);
    }

    [Fact]
    public async Task ADisconnectedClientFreesItsSlotAndAFullQueueIs429()
    {
        await using ServerClient client = await ServerClient.StartAsync(ServerClient.Options() with { Context = 4096, MaxQueued = 0 });
        string body = new JsonObject
        {
            ["prompt"] = "x", ["suffix"] = "y", ["max_tokens"] = 4000, ["temperature"] = 0, ["stream"] = true,
        }.ToJsonString();
        using (var cancel = new CancellationTokenSource())
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            using HttpResponseMessage response = await client.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel.Token);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancel.Token));
            Assert.StartsWith("data: ", await reader.ReadLineAsync(cancel.Token));
            Assert.Equal(1, await client.MetricAsync("tune_requests_processing"));

            var refused = await client.PostAsync("/v1/completions", new JsonObject { ["prompt"] = "z", ["max_tokens"] = 2 });
            Assert.Equal(429, refused.Status);
            Assert.Equal("rate_limit_error", (string)refused.Body!["error"]!["type"]!);
            cancel.Cancel();
        }

        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (await client.MetricAsync("tune_requests_processing") > 0 && clock.Elapsed < TimeSpan.FromSeconds(20)) await Task.Delay(20);
        Assert.Equal(0, await client.MetricAsync("tune_requests_processing"));
        Assert.True(await client.MetricAsync("tune_tokens_predicted_total") < 4000, "generation went on after the client left");
        var served = await client.PostAsync("/v1/completions", new JsonObject { ["prompt"] = "z", ["max_tokens"] = 2 });
        Assert.Equal(200, served.Status);
    }

    [Fact]
    public async Task TheContextIsEnforced()
    {
        await using ServerClient client = await ServerClient.StartAsync(ServerClient.Options() with { Context = 32 });
        var (status, body, _) = await client.PostAsync("/v1/chat/completions", new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = string.Join(" ", Enumerable.Repeat("word", 40)) }),
        });
        Assert.Equal(400, status);
        Assert.Equal("context_length_exceeded", (string)body!["error"]!["code"]!);
        Assert.Equal("messages", (string)body["error"]!["param"]!);

        // A prompt that fits generates until the context is full and says so.
        int[] prompt = FimPrompt.Build(ServeModels.Tokenizer, "a", "b").Ids;
        var fits = await client.PostAsync("/v1/completions", new JsonObject
        {
            ["prompt"] = "a", ["suffix"] = "b", ["max_tokens"] = 1000, ["temperature"] = 0,
        });
        Assert.Equal(200, fits.Status);
        int produced = (int)fits.Body!["usage"]!["completion_tokens"]!;
        Assert.True(produced <= 32 - prompt.Length, $"{produced} tokens after a {prompt.Length}-token prompt in a 32-token context");
        if (produced == 32 - prompt.Length) Assert.Equal("length", (string)fits.Body["choices"]![0]!["finish_reason"]!);
    }

    public static TheoryData<string, string, int, string?> BadRequests => new()
    {
        { "/v1/chat/completions", "{\"messages\": [", 400, null },
        { "/v1/chat/completions", "[1, 2]", 400, null },
        { "/v1/chat/completions", "{\"model\": \"gpt-4\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}", 404, "model" },
        { "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"temperature\": 5}", 400, "temperature" },
        { "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"top_p\": 0}", 400, "top_p" },
        { "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 0}", 400, "max_tokens" },
        { "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stream\": \"yes\"}", 400, "stream" },
        { "/v1/chat/completions", "{\"messages\": [{\"role\": \"tool\", \"content\": \"hi\"}]}", 400, "messages[0].role" },
        { "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": 7}]}", 400, "messages[0].content" },
        { "/v1/chat/completions", "{\"messages\": []}", 400, "messages" },
        { "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stop\": [1]}", 400, "stop" },
        { "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"n\": 2}", 400, "n" },
        { "/v1/completions", "{\"suffix\": \"x\"}", 400, "prompt" },
        { "/v1/completions", "{\"prompt\": \"a\", \"suffix\": 3}", 400, "suffix" },
        { "/v1/completions", "{\"prompt\": \"a\", \"logprobs\": 2}", 400, "logprobs" },
        { "/beta/completions", "{\"prompt\": \"a\", \"model\": \"missing\"}", 404, "model" },
        { "/infill", "{\"input_prefix\": 1}", 400, "input_prefix" },
        { "/infill", "{\"input_prefix\": \"a\", \"input_extra\": [3]}", 400, "input_extra[0]" },
        { "/infill", "{\"input_prefix\": \"a\", \"n_predict\": 0}", 400, "n_predict" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task BadInputIsAnOpenAiErrorAndTheServerKeepsServing(string path, string json, int status, string? param)
    {
        await using ServerClient client = await ServerClient.StartAsync();
        var (got, body, text) = await client.PostAsync(path, json);
        Assert.True(got == status, $"{got}: {text}");
        JsonNode error = body!["error"]!;
        Assert.False(string.IsNullOrEmpty((string?)error["message"]), text);
        Assert.NotNull(error["type"]);
        Assert.Equal(param, (string?)error["param"]);
        var ok = await client.PostAsync("/v1/completions", new JsonObject { ["prompt"] = "still", ["max_tokens"] = 2 });
        Assert.Equal(200, ok.Status);
    }

    [Fact]
    public async Task OllamaErrorsAreOllamaShaped()
    {
        await using ServerClient client = await ServerClient.StartAsync();
        var (status, body, _) = await client.PostAsync("/api/generate", "{\"model\": \"nope\", \"prompt\": \"x\"}");
        Assert.Equal(404, status);
        Assert.Contains("nope", (string)body!["error"]!);
        (status, body, _) = await client.PostAsync("/api/generate", "{\"prompt\": \"x\", \"options\": {\"temperature\": \"hot\"}}");
        Assert.Equal(400, status);
        Assert.Contains("options.temperature", (string)body!["error"]!);
    }

    [Fact]
    public async Task AnApiKeyGuardsEverythingButHealth()
    {
        await using ServerClient client = await ServerClient.StartAsync(ServerClient.Options() with { ApiKey = "sekrit" });
        var body = new JsonObject { ["prompt"] = "a", ["max_tokens"] = 2 }.ToJsonString();
        async Task<HttpStatusCode> Post(string? key)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            if (key is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
            using HttpResponseMessage response = await client.Http.SendAsync(request);
            if (response.StatusCode == HttpStatusCode.Unauthorized)
                Assert.Equal("invalid_api_key", (string)JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!["code"]!);
            return response.StatusCode;
        }
        Assert.Equal(HttpStatusCode.Unauthorized, await Post(null));
        Assert.Equal(HttpStatusCode.Unauthorized, await Post("wrong"));
        Assert.Equal(HttpStatusCode.OK, await Post("sekrit"));
        using HttpResponseMessage models = await client.Http.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.Unauthorized, models.StatusCode);
        using HttpResponseMessage health = await client.Http.GetAsync("/health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    [Fact]
    public async Task AGgufModelPathIsServedThroughTheGgufLoader()
    {
        string gguf = Tune.Tests.Convert.ConvertModels.Convert(ServeModels.Checkpoint, $"serve-{Guid.NewGuid():N}.gguf", Tune.Formats.GgmlType.F32);
        int[] prompt = FimPrompt.Build(ServeModels.Tokenizer, "def f(x):\n    ", "\n").Ids;
        string expected;
        using (var loaded = Tune.Serve.Gguf.GgufModel.Load(gguf, Tune.Model.TorchRuntime.Cpu, threads: 1))
            expected = loaded.Tokenizer.Decode(new Tune.Model.TextGenerator(loaded.Model)
                .Generate(prompt, 8, new Tune.Model.SamplingOptions(), loaded.Tokenizer.VocabSize).ToArray(), skipSpecial: true);

        await using ServerClient client = await ServerClient.StartAsync(ServerClient.Options() with
        {
            ModelPath = gguf, Adapters = new Dictionary<string, string>(), Threads = 1,
        });
        Assert.Equal(Path.GetFileNameWithoutExtension(gguf), client.ModelId);
        var (status, body, text) = await client.PostAsync("/v1/completions", new JsonObject
        {
            ["model"] = client.ModelId, ["prompt"] = "def f(x):\n    ", ["suffix"] = "\n", ["max_tokens"] = 8, ["temperature"] = 0,
        });
        Assert.True(status == 200, text);
        Assert.Equal(prompt.Length, (int)body!["usage"]!["prompt_tokens"]!);
        Assert.Equal(expected, (string)body["choices"]![0]!["text"]!);
    }
}
