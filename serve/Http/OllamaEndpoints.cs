using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Tune.Model.Tokenization;
using Tune.Serve.Engine;

namespace Tune.Serve.Http;

/// <summary>
/// Ollama's /api/generate (anchors §C.2), the path Tabby and Twinny take: with `suffix` the prompt is PSM FIM, as
/// Ollama's deepseek-coder-v2 template renders it; without, the prompt is a user turn in the chat format, or, with
/// `raw` or FIM markers in it, the client's own rendering. Streams NDJSON unless `stream` is false, as Ollama does.
/// </summary>
public static class OllamaEndpoints
{
    public static void Map(WebApplication app, ServeContext context) =>
        app.MapPost("/api/generate", http => ResponseWriter.GuardAsync(http, ErrorShape.Ollama, () => GenerateAsync(http, context)));

    private static async Task GenerateAsync(HttpContext http, ServeContext context)
    {
        RequestBody body = await RequestBody.ReadAsync(http.Request, http.RequestAborted);
        string model = body.String("model") ?? context.Model.Id;
        string? adapter = context.ResolveAdapter(model);
        string prompt = body.String("prompt") ?? "";
        string? suffix = body.String("suffix");
        string? system = body.String("system");
        bool raw = body.Bool("raw") ?? false;
        bool stream = body.Bool("stream") ?? true;
        RequestBody options = body.Object("options") ?? RequestBody.Empty("options");
        if (prompt.Length == 0 && suffix is null)
        {
            // Ollama answers an empty prompt by loading the model and reporting so.
            await ResponseWriter.JsonAsync(http, new JsonObject
            {
                ["model"] = model, ["created_at"] = Now(), ["response"] = "", ["done"] = true, ["done_reason"] = "load",
            });
            return;
        }

        DeepSeekTokenizer tokenizer = context.Model.Tokenizer;
        // Twinny sends its own FIM rendering without `raw`; through Ollama's chat template that would become a user
        // turn and break FIM, so a prompt with FIM markers is taken as rendered.
        int[] ids = suffix is not null
            ? context.FimPrompt(prompt, suffix, "suffix")
            : raw || ServeContext.HasFimMarkers(prompt)
                ? context.RenderedPrompt(prompt)
                : ChatPrompt.Build(tokenizer, [.. system is null ? [] : new[] { new ChatMessage(ChatRole.System, system) },
                    new ChatMessage(ChatRole.User, prompt)], addGenerationPrompt: true).Ids;
        long numPredict = options.Integer("num_predict", -2, int.MaxValue) ?? -1;
        if (numPredict == 0) throw ApiException.BadParameter("options.num_predict", "options.num_predict must be -1 (unlimited) or positive");
        // Ollama's defaults: temperature 0.8, top_p 0.9, top_k 40.
        var settings = new GenerationSettings(ServeContext.Sampling(options, temperature: 0.8, topP: 0.9, topK: 40),
            numPredict < 0 ? null : (int)numPredict, options.Stops("stop"));
        GenerationRequest request = context.Submit(ids, adapter, settings, "prompt", http.RequestAborted);

        if (!stream)
        {
            (string text, GenerationSummary summary) = await ServeContext.CollectAsync(request, http.RequestAborted);
            await ResponseWriter.JsonAsync(http, Final(model, text, summary, ids));
            return;
        }
        http.Response.StatusCode = 200;
        http.Response.ContentType = "application/x-ndjson";
        await foreach (GenerationEvent e in request.Events.ReadAllAsync(http.RequestAborted))
        {
            switch (e)
            {
                case TextDelta delta:
                    await ResponseWriter.LineAsync(http, new JsonObject
                    {
                        ["model"] = model, ["created_at"] = Now(), ["response"] = delta.Text, ["done"] = false,
                    });
                    break;
                case GenerationDone done:
                    await ResponseWriter.LineAsync(http, Final(model, "", done.Summary, ids));
                    return;
                case GenerationFailed failed:
                    throw new ApiException(500, $"generation failed: {failed.Message}", type: "server_error");
            }
        }
    }

    private static string Now() => DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'");

    /// <summary>The last object: done, why, the token context, and Ollama's counts and durations (nanoseconds).</summary>
    private static JsonObject Final(string model, string text, GenerationSummary s, int[] prompt) => new()
    {
        ["model"] = model,
        ["created_at"] = Now(),
        ["response"] = text,
        ["done"] = true,
        ["done_reason"] = s.Reason == FinishReason.Length ? "length" : "stop",
        ["context"] = new JsonArray([.. prompt.Concat(s.Tokens).Select(id => (JsonNode)id!)]),
        ["total_duration"] = (long)((s.PromptTime + s.DecodeTime).TotalMilliseconds * 1e6),
        ["load_duration"] = 0,
        ["prompt_eval_count"] = s.ComputedPromptTokens,
        ["prompt_eval_duration"] = (long)(s.PromptTime.TotalMilliseconds * 1e6),
        ["eval_count"] = s.Tokens.Count,
        ["eval_duration"] = (long)(s.DecodeTime.TotalMilliseconds * 1e6),
    };
}
