using System.Text.Json.Nodes;
using Tune.Cli;
using Tune.Model.Tokenization;

namespace Tune.Tests.Serve;

/// <summary>The four ways IDEs send fill-in-the-middle, over HTTP, against `tune generate --fim-*` and each other.</summary>
[Collection("torch")]
public sealed class FimDialectTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const string Prefix = "def add(a, b):\n    ", Suffix = "\n    return c";
    private ServerClient Client => fixture.Client;

    [Fact]
    public async Task GreedyCompletionsWithSuffixEqualTuneGenerate()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = await Program.Run(["generate", "--model", ServeModels.Checkpoint, "--fim-prefix", Prefix, "--fim-suffix", Suffix,
            "--max-tokens", "12", "--device", "cpu", "--dtype", "f32"], output, error);
        Assert.True(exit == 0, error.ToString());
        Assert.NotEmpty(output.ToString());

        var (status, body, text) = await Client.PostAsync("/v1/completions", new JsonObject
        {
            ["model"] = Client.ModelId, ["prompt"] = Prefix, ["suffix"] = Suffix, ["max_tokens"] = 12, ["temperature"] = 0,
        });
        Assert.True(status == 200, text);
        Assert.Equal(output.ToString(), (string)body!["choices"]![0]!["text"]!);
        Assert.Equal("text_completion", (string)body["object"]!);
        Assert.StartsWith("cmpl-", (string)body["id"]!);
        Assert.Equal(FimPrompt.Build(ServeModels.Tokenizer, Prefix, Suffix).Ids.Length, (int)body["usage"]!["prompt_tokens"]!);
    }

    [Fact]
    public async Task AllFourDialectsFillTheSameMiddle()
    {
        string expected = ServeModels.ColdRun(FimPrompt.Build(ServeModels.Tokenizer, Prefix, Suffix).Ids, 10);
        var openAi = new JsonObject { ["prompt"] = Prefix, ["suffix"] = Suffix, ["max_tokens"] = 10, ["temperature"] = 0 };
        foreach (string path in new[] { "/v1/completions", "/beta/completions" })
        {
            var (status, body, text) = await Client.PostAsync(path, openAi.DeepClone().AsObject());
            Assert.True(status == 200, text);
            Assert.Equal(expected, (string)body!["choices"]![0]!["text"]!);
        }

        var infill = await Client.PostAsync("/infill", new JsonObject
        {
            ["input_prefix"] = Prefix, ["input_suffix"] = Suffix, ["n_predict"] = 10, ["temperature"] = 0,
        });
        Assert.True(infill.Status == 200, infill.Text);
        Assert.Equal(expected, (string)infill.Body!["content"]!);
        Assert.True((bool)infill.Body["stop"]!);
        Assert.Contains((string)infill.Body["stop_type"]!, new[] { "eos", "limit" });

        var ollama = await Client.PostAsync("/api/generate", new JsonObject
        {
            ["model"] = Client.ModelId, ["prompt"] = Prefix, ["suffix"] = Suffix, ["stream"] = false,
            ["options"] = new JsonObject { ["temperature"] = 0, ["num_predict"] = 10 },
        });
        Assert.True(ollama.Status == 200, ollama.Text);
        Assert.Equal(expected, (string)ollama.Body!["response"]!);
        Assert.True((bool)ollama.Body["done"]!);
        Assert.Equal(FimPrompt.Build(ServeModels.Tokenizer, Prefix, Suffix).Ids.Length + (int)ollama.Body["eval_count"]!,
            ollama.Body["context"]!.AsArray().Count);
    }

    [Fact]
    public async Task InputExtraGoesBeforeThePrefixAfterLlamaCppsSnippetSeparator()
    {
        DeepSeekTokenizer t = ServeModels.Tokenizer;
        int[] fim = FimPrompt.Build(t, Prefix, Suffix).Ids;
        int[] prompt = [fim[0], .. t.EncodeText("\n\n--- snippet ---\n\nimport math"), .. fim[1..], .. t.EncodeText("x")];
        var (status, body, text) = await Client.PostAsync("/infill", new JsonObject
        {
            ["input_prefix"] = Prefix, ["input_suffix"] = Suffix, ["prompt"] = "x", ["n_predict"] = 8, ["temperature"] = 0,
            ["input_extra"] = new JsonArray(new JsonObject { ["filename"] = "util.py", ["text"] = "import math" }),
        });
        Assert.True(status == 200, text);
        Assert.Equal(prompt.Length, (int)body!["tokens_evaluated"]!);
        Assert.Equal(ServeModels.ColdRun(prompt, 8), (string)body["content"]!);
    }

    [Fact]
    public async Task StreamsCarryTheSameTextInEachDialectsFraming()
    {
        var plain = await Client.PostAsync("/v1/completions", new JsonObject
        {
            ["prompt"] = Prefix, ["suffix"] = Suffix, ["max_tokens"] = 10, ["temperature"] = 0,
        });
        string expected = (string)plain.Body!["choices"]![0]!["text"]!;

        var sse = await Client.PostAsync("/beta/completions", new JsonObject
        {
            ["prompt"] = Prefix, ["suffix"] = Suffix, ["max_tokens"] = 10, ["temperature"] = 0, ["stream"] = true,
            ["stream_options"] = new JsonObject { ["include_usage"] = true },
        });
        List<string> events = ServerClient.Events(sse.Text);
        Assert.Equal("[DONE]", events[^1]);
        List<JsonNode> chunks = events[..^1].Select(e => JsonNode.Parse(e)!).ToList();
        Assert.Equal(expected, string.Concat(chunks.SelectMany(c => c["choices"]!.AsArray()).Select(c => (string)c!["text"]!)));
        Assert.Equal(plain.Body["usage"]!["completion_tokens"]!.GetValue<int>(), (int)chunks[^1]["usage"]!["completion_tokens"]!);

        var infill = await Client.PostAsync("/infill", new JsonObject
        {
            ["input_prefix"] = Prefix, ["input_suffix"] = Suffix, ["n_predict"] = 10, ["temperature"] = 0, ["stream"] = true,
        });
        List<JsonNode> parts = ServerClient.Events(infill.Text).Select(e => JsonNode.Parse(e)!).ToList();
        Assert.Equal(expected, string.Concat(parts.Select(p => (string)p["content"]!)));
        Assert.True((bool)parts[^1]["stop"]!);
        Assert.All(parts[..^1], p => Assert.False((bool)p["stop"]!));

        // Ollama streams by default: one JSON object per line, the last one done.
        var ollama = await Client.PostAsync("/api/generate", new JsonObject
        {
            ["prompt"] = Prefix, ["suffix"] = Suffix, ["options"] = new JsonObject { ["temperature"] = 0, ["num_predict"] = 10 },
        });
        List<JsonNode> lines = ollama.Text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(expected, string.Concat(lines.Select(l => (string)l["response"]!)));
        Assert.True((bool)lines[^1]["done"]!);
        Assert.All(lines[..^1], l => Assert.False((bool)l["done"]!));
        Assert.Contains((string)lines[^1]["done_reason"]!, new[] { "stop", "length" });
    }

    [Fact]
    public async Task PromptsRenderedByTheClientGetTheirMarkersAsTokens()
    {
        // Tabby and Twinny render DeepSeek's FIM template themselves and send it as the prompt.
        string rendered = FimTokenIds.BeginToken + Prefix + FimTokenIds.HoleToken + Suffix + FimTokenIds.EndToken;
        int[] ids = FimPrompt.Build(ServeModels.Tokenizer, Prefix, Suffix).Ids;
        string expected = ServeModels.ColdRun(ids, 10);

        var twinny = await Client.PostAsync("/api/generate", new JsonObject
        {
            ["model"] = Client.ModelId, ["prompt"] = rendered, ["stream"] = false, ["keep_alive"] = "5m",
            ["options"] = new JsonObject { ["temperature"] = 0, ["num_predict"] = 10 },
        });
        Assert.True(twinny.Status == 200, twinny.Text);
        Assert.Equal(expected, (string)twinny.Body!["response"]!);
        Assert.Equal(ids, twinny.Body["context"]!.AsArray().Take(ids.Length).Select(n => (int)n!));

        var tabby = await Client.PostAsync("/completion", new JsonObject
        {
            ["prompt"] = rendered, ["n_predict"] = 10, ["temperature"] = 0, ["stream"] = false,
        });
        Assert.True(tabby.Status == 200, tabby.Text);
        Assert.Equal(ids.Length, (int)tabby.Body!["tokens_evaluated"]!);
        Assert.Equal(expected, (string)tabby.Body["content"]!);

        var openAi = await Client.PostAsync("/v1/completions", new JsonObject { ["prompt"] = rendered, ["max_tokens"] = 10, ["temperature"] = 0 });
        Assert.Equal(expected, (string)openAi.Body!["choices"]![0]!["text"]!);

        // Markers inside a chat message stay text: they cannot turn a user turn into a FIM prompt.
        var chat = await Client.PostAsync("/chat/completions", new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = rendered }), ["max_tokens"] = 3, ["temperature"] = 0,
        });
        Assert.True(chat.Status == 200, chat.Text);
        Assert.Equal(ChatPrompt.Build(ServeModels.Tokenizer, [new ChatMessage(ChatRole.User, rendered)], true).Ids.Length,
            (int)chat.Body!["usage"]!["prompt_tokens"]!);
    }

    [Fact]
    public async Task OllamaWithoutSuffixIsAChatTurnAndRawIsPlainText()
    {
        DeepSeekTokenizer t = ServeModels.Tokenizer;
        var chat = await Client.PostAsync("/api/generate", new JsonObject
        {
            ["prompt"] = "hello", ["stream"] = false, ["options"] = new JsonObject { ["temperature"] = 0, ["num_predict"] = 6 },
        });
        Assert.Equal(ServeModels.ColdRun(ChatPrompt.Build(t, [new ChatMessage(ChatRole.User, "hello")], true).Ids, 6), (string)chat.Body!["response"]!);
        var raw = await Client.PostAsync("/api/generate", new JsonObject
        {
            ["prompt"] = "hello", ["raw"] = true, ["stream"] = false, ["options"] = new JsonObject { ["temperature"] = 0, ["num_predict"] = 6 },
        });
        Assert.Equal(ServeModels.ColdRun([t.BosId, .. t.EncodeText("hello")], 6), (string)raw.Body!["response"]!);
    }
}
