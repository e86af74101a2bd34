using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Tune.Model.Tokenization;
using Tune.Serve.Engine;

namespace Tune.Serve.Http;

/// <summary>
/// The OpenAI-compatible API (anchors §C.6): chat completions in the DeepSeek-Coder-V2 chat format, and legacy
/// completions where a `suffix` makes the request fill-in-the-middle, the PSM prompt built here from prompt and
/// suffix (DeepSeek's /beta/completions, which Continue's deepseek provider calls, is the same handler).
/// </summary>
public static class OpenAiEndpoints
{
    public static void Map(WebApplication app, ServeContext context)
    {
        // DeepSeek's API also answers chat without /v1; Continue's deepseek provider calls {apiBase}/chat/completions.
        foreach (string path in new[] { "/v1/chat/completions", "/chat/completions" })
            app.MapPost(path, http => ResponseWriter.GuardAsync(http, ErrorShape.OpenAi, () => ChatAsync(http, context)));
        foreach (string path in new[] { "/v1/completions", "/beta/completions" })
            app.MapPost(path, http => ResponseWriter.GuardAsync(http, ErrorShape.OpenAi, () => CompletionsAsync(http, context)));
        app.MapGet("/v1/models", http => ResponseWriter.GuardAsync(http, ErrorShape.OpenAi, () => ModelsAsync(http, context)));
    }

    private static Task ModelsAsync(HttpContext http, ServeContext context)
    {
        var data = new JsonArray();
        foreach (string id in new[] { context.Model.Id }.Concat(context.Model.AdapterNames))
            data.Add(new JsonObject { ["id"] = id, ["object"] = "model", ["created"] = context.Created, ["owned_by"] = "tune" });
        return ResponseWriter.JsonAsync(http, new JsonObject { ["object"] = "list", ["data"] = data });
    }

    private static async Task ChatAsync(HttpContext http, ServeContext context)
    {
        RequestBody body = await RequestBody.ReadAsync(http.Request, http.RequestAborted);
        string? adapter = context.ResolveAdapter(body.String("model"));
        int[] prompt = ChatPrompt.Build(context.Model.Tokenizer, Messages(body), addGenerationPrompt: true).Ids;
        (GenerationSettings settings, bool stream, bool includeUsage) = OpenAiSettings(body, defaultMaxTokens: null);
        GenerationRequest request = context.Submit(prompt, adapter, settings, "messages", http.RequestAborted);
        string id = "chatcmpl-" + Guid.NewGuid().ToString("N")[..24];
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string model = body.String("model") ?? context.Model.Id;
        JsonObject Envelope(string type) => new()
        {
            ["id"] = id, ["object"] = type, ["created"] = created, ["model"] = model, ["system_fingerprint"] = ServeContext.Fingerprint,
        };

        if (!stream)
        {
            (string text, GenerationSummary summary) = await ServeContext.CollectAsync(request, http.RequestAborted);
            JsonObject response = Envelope("chat.completion");
            response["choices"] = new JsonArray(new JsonObject
            {
                ["index"] = 0,
                ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = text },
                ["finish_reason"] = FinishReasonName(summary.Reason),
                ["logprobs"] = null,
            });
            response["usage"] = Usage(summary);
            await ResponseWriter.JsonAsync(http, response);
            return;
        }

        ResponseWriter.StartEvents(http);
        bool sentRole = false;
        JsonObject Chunk(JsonObject delta, string? finish)
        {
            JsonObject chunk = Envelope("chat.completion.chunk");
            chunk["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finish, ["logprobs"] = null });
            return chunk;
        }
        JsonObject Delta(string text)
        {
            var delta = new JsonObject();
            if (!sentRole) delta["role"] = "assistant";
            delta["content"] = text;
            sentRole = true;
            return delta;
        }
        await foreach (GenerationEvent e in request.Events.ReadAllAsync(http.RequestAborted))
        {
            switch (e)
            {
                case TextDelta delta:
                    await ResponseWriter.EventAsync(http, ResponseWriter.Serialize(Chunk(Delta(delta.Text), null)));
                    break;
                case GenerationDone done:
                    if (!sentRole) await ResponseWriter.EventAsync(http, ResponseWriter.Serialize(Chunk(Delta(""), null)));
                    await ResponseWriter.EventAsync(http, ResponseWriter.Serialize(Chunk(new JsonObject(), FinishReasonName(done.Summary.Reason))));
                    if (includeUsage)
                    {
                        JsonObject usage = Envelope("chat.completion.chunk");
                        usage["choices"] = new JsonArray();
                        usage["usage"] = Usage(done.Summary);
                        await ResponseWriter.EventAsync(http, ResponseWriter.Serialize(usage));
                    }
                    await ResponseWriter.EventAsync(http, "[DONE]");
                    return;
                case GenerationFailed failed:
                    throw new ApiException(500, $"generation failed: {failed.Message}", type: "server_error");
            }
        }
    }

    private static async Task CompletionsAsync(HttpContext http, ServeContext context)
    {
        RequestBody body = await RequestBody.ReadAsync(http.Request, http.RequestAborted);
        string? adapter = context.ResolveAdapter(body.String("model"));
        string text = PromptText(body);
        string? suffix = body.String("suffix");
        if (body.Bool("echo") == true) throw ApiException.BadParameter("echo", "echo is not supported");
        if (body.Has("logprobs")) throw ApiException.BadParameter("logprobs", "logprobs is not supported");
        body.Integer("best_of", 1, 1);
        int[] prompt = suffix is not null ? context.FimPrompt(text, suffix, "suffix") : context.RenderedPrompt(text);
        // OpenAI's legacy completions default to 16 tokens.
        (GenerationSettings settings, bool stream, bool includeUsage) = OpenAiSettings(body, defaultMaxTokens: 16);
        GenerationRequest request = context.Submit(prompt, adapter, settings, "prompt", http.RequestAborted);
        string id = "cmpl-" + Guid.NewGuid().ToString("N")[..24];
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string model = body.String("model") ?? context.Model.Id;
        JsonObject Response(string piece, string? finish)
        {
            var response = new JsonObject
            {
                ["id"] = id, ["object"] = "text_completion", ["created"] = created, ["model"] = model,
                ["system_fingerprint"] = ServeContext.Fingerprint,
            };
            response["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["text"] = piece, ["finish_reason"] = finish, ["logprobs"] = null });
            return response;
        }

        if (!stream)
        {
            (string completion, GenerationSummary summary) = await ServeContext.CollectAsync(request, http.RequestAborted);
            JsonObject response = Response(completion, FinishReasonName(summary.Reason));
            response["usage"] = Usage(summary);
            await ResponseWriter.JsonAsync(http, response);
            return;
        }

        ResponseWriter.StartEvents(http);
        await foreach (GenerationEvent e in request.Events.ReadAllAsync(http.RequestAborted))
        {
            switch (e)
            {
                case TextDelta delta:
                    await ResponseWriter.EventAsync(http, ResponseWriter.Serialize(Response(delta.Text, null)));
                    break;
                case GenerationDone done:
                    await ResponseWriter.EventAsync(http, ResponseWriter.Serialize(Response("", FinishReasonName(done.Summary.Reason))));
                    if (includeUsage)
                    {
                        JsonObject usage = Response("", null);
                        usage["choices"] = new JsonArray();
                        usage["usage"] = Usage(done.Summary);
                        await ResponseWriter.EventAsync(http, ResponseWriter.Serialize(usage));
                    }
                    await ResponseWriter.EventAsync(http, "[DONE]");
                    return;
                case GenerationFailed failed:
                    throw new ApiException(500, $"generation failed: {failed.Message}", type: "server_error");
            }
        }
    }

    /// <summary>`prompt`: a string, or an array holding exactly one string (one completion per request).</summary>
    private static string PromptText(RequestBody body)
    {
        if (!body.Root.TryGetProperty("prompt", out JsonElement prompt) || prompt.ValueKind == JsonValueKind.Null)
            throw ApiException.BadParameter("prompt", "prompt is required");
        return prompt.ValueKind switch
        {
            JsonValueKind.String => prompt.GetString()!,
            JsonValueKind.Array when prompt.GetArrayLength() == 1 && prompt[0].ValueKind == JsonValueKind.String => prompt[0].GetString()!,
            _ => throw ApiException.BadParameter("prompt", "prompt must be a string (or an array of one string)"),
        };
    }

    private static List<ChatMessage> Messages(RequestBody body)
    {
        IReadOnlyList<JsonElement> messages = body.Array("messages") ?? throw ApiException.BadParameter("messages", "messages is required");
        if (messages.Count == 0) throw ApiException.BadParameter("messages", "messages must not be empty");
        var result = new List<ChatMessage>();
        for (int i = 0; i < messages.Count; i++)
        {
            if (messages[i].ValueKind != JsonValueKind.Object) throw ApiException.BadParameter($"messages[{i}]", $"messages[{i}] must be an object");
            var message = new RequestBody(messages[i], $"messages[{i}]");
            ChatRole role = message.String("role") switch
            {
                "system" or "developer" => ChatRole.System,
                "user" => ChatRole.User,
                "assistant" => ChatRole.Assistant,
                null => throw ApiException.BadParameter($"messages[{i}].role", $"messages[{i}].role is required"),
                string other => throw ApiException.BadParameter($"messages[{i}].role",
                    $"messages[{i}].role `{other}` is not supported (system, developer, user or assistant)"),
            };
            result.Add(new ChatMessage(role, Content(messages[i], $"messages[{i}].content")));
        }
        return result;
    }

    /// <summary>Message content: a string, or text parts ([{"type":"text","text":…}]) joined.</summary>
    private static string Content(JsonElement message, string field)
    {
        if (!message.TryGetProperty("content", out JsonElement content) || content.ValueKind == JsonValueKind.Null) return "";
        if (content.ValueKind == JsonValueKind.String) return content.GetString()!;
        if (content.ValueKind == JsonValueKind.Array &&
            content.EnumerateArray().All(p => p.ValueKind == JsonValueKind.Object
                                              && p.TryGetProperty("type", out JsonElement t) && t.ValueKind == JsonValueKind.String && t.GetString() == "text"
                                              && p.TryGetProperty("text", out JsonElement x) && x.ValueKind == JsonValueKind.String))
            return string.Concat(content.EnumerateArray().Select(p => p.GetProperty("text").GetString()));
        throw ApiException.BadParameter(field, $"{field} must be a string or an array of text parts");
    }

    private static (GenerationSettings Settings, bool Stream, bool IncludeUsage) OpenAiSettings(RequestBody body, int? defaultMaxTokens)
    {
        body.Integer("n", 1, 1);
        foreach (string penalty in new[] { "frequency_penalty", "presence_penalty" })
            if (body.Number(penalty, -2, 2) is { } value && value != 0)
                throw ApiException.BadParameter(penalty, $"{penalty} is not supported (only 0)");
        long? maxTokens = body.Integer("max_completion_tokens", 1, int.MaxValue) ?? body.Integer("max_tokens", 1, int.MaxValue);
        var settings = new GenerationSettings(ServeContext.Sampling(body, temperature: 1, topP: 1, topK: 0),
            (int?)maxTokens ?? defaultMaxTokens, body.Stops("stop"));
        bool stream = body.Bool("stream") ?? false;
        bool includeUsage = body.Object("stream_options")?.Bool("include_usage") ?? false;
        return (settings, stream, includeUsage);
    }

    private static string FinishReasonName(FinishReason reason) => reason == FinishReason.Length ? "length" : "stop";

    /// <summary>OpenAI's usage, with cached prompt tokens both as OpenAI spells them and as DeepSeek does.</summary>
    private static JsonObject Usage(GenerationSummary s) => new()
    {
        ["prompt_tokens"] = s.PromptTokens,
        ["completion_tokens"] = s.Tokens.Count,
        ["total_tokens"] = s.PromptTokens + s.Tokens.Count,
        ["prompt_tokens_details"] = new JsonObject { ["cached_tokens"] = s.CachedPromptTokens },
        ["prompt_cache_hit_tokens"] = s.CachedPromptTokens,
        ["prompt_cache_miss_tokens"] = s.ComputedPromptTokens,
    };
}
