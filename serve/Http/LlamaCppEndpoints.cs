using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Tune.Model.Tokenization;
using Tune.Serve.Engine;

namespace Tune.Serve.Http;

/// <summary>
/// llama.cpp server's native endpoints (anchors §C.1): /health, /completion, and /infill, whose prompt is
/// [input_extra]&lt;FIM_PRE&gt;prefix&lt;FIM_SUF&gt;suffix&lt;FIM_MID&gt;prompt. DeepSeek-V2 has no FIM_REPO/FILE_SEP tokens, so
/// each input_extra chunk goes in after llama.cpp's plain-text separator "\n\n--- snippet ---\n\n".
/// </summary>
public static class LlamaCppEndpoints
{
    private const string SnippetSeparator = "\n\n--- snippet ---\n\n";

    public static void Map(WebApplication app, ServeContext context)
    {
        foreach (string path in new[] { "/health", "/v1/health" })
            app.MapGet(path, http => ResponseWriter.JsonAsync(http, new JsonObject { ["status"] = "ok" }));
        app.MapPost("/infill", http => ResponseWriter.GuardAsync(http, ErrorShape.OpenAi,
            () => GenerateAsync(http, context, body => InfillPrompt(context, body), "input_prefix")));
        // The native completion endpoint Tabby's llama.cpp/completion and Twinny's llama.cpp provider post their
        // client-rendered FIM prompt to.
        app.MapPost("/completion", http => ResponseWriter.GuardAsync(http, ErrorShape.OpenAi,
            () => GenerateAsync(http, context, body => context.RenderedPrompt(CompletionPrompt(body)), "prompt")));
    }

    private static string CompletionPrompt(RequestBody body) =>
        body.String("prompt") ?? throw ApiException.BadParameter("prompt", "prompt is required");

    private static async Task GenerateAsync(HttpContext http, ServeContext context, Func<RequestBody, int[]> buildPrompt, string promptField)
    {
        RequestBody body = await RequestBody.ReadAsync(http.Request, http.RequestAborted);
        string? adapter = context.ResolveAdapter(body.String("model"));
        int[] prompt = buildPrompt(body);
        long nPredict = body.Integer("n_predict", -1, int.MaxValue) ?? -1;
        if (nPredict == 0) throw ApiException.BadParameter("n_predict", "n_predict must be -1 (until the context is full) or positive");
        // llama.cpp's sampling defaults (min_p and the repetition penalty are not implemented and are ignored).
        var settings = new GenerationSettings(ServeContext.Sampling(body, temperature: 0.8, topP: 0.95, topK: 40),
            nPredict < 0 ? null : (int)nPredict, body.Stops("stop"));
        bool stream = body.Bool("stream") ?? false;
        GenerationRequest request = context.Submit(prompt, adapter, settings, promptField, http.RequestAborted);
        string model = body.String("model") ?? context.Model.Id;

        if (!stream)
        {
            (string text, GenerationSummary summary) = await ServeContext.CollectAsync(request, http.RequestAborted);
            await ResponseWriter.JsonAsync(http, Final(text, summary, model));
            return;
        }
        ResponseWriter.StartEvents(http);
        await foreach (GenerationEvent e in request.Events.ReadAllAsync(http.RequestAborted))
        {
            switch (e)
            {
                case TextDelta delta:
                    await ResponseWriter.EventAsync(http, ResponseWriter.Serialize(new JsonObject
                    {
                        ["content"] = delta.Text, ["tokens"] = new JsonArray(), ["stop"] = false,
                    }));
                    break;
                case GenerationDone done:
                    // llama.cpp's native stream ends with the full final object and no [DONE] line.
                    await ResponseWriter.EventAsync(http, ResponseWriter.Serialize(Final("", done.Summary, model)));
                    return;
                case GenerationFailed failed:
                    throw new ApiException(500, $"generation failed: {failed.Message}", type: "server_error");
            }
        }
    }

    private static int[] InfillPrompt(ServeContext context, RequestBody body)
    {
        DeepSeekTokenizer tokenizer = context.Model.Tokenizer;
        int[] fim = context.FimPrompt(body.String("input_prefix") ?? "", body.String("input_suffix") ?? "", "input_prefix");
        int bos = tokenizer.AddBos ? 1 : 0;
        var ids = new List<int>(fim.AsSpan(0, bos).ToArray());
        IReadOnlyList<JsonElement> extra = body.Array("input_extra") ?? [];
        for (int i = 0; i < extra.Count; i++)
        {
            if (extra[i].ValueKind != JsonValueKind.Object) throw ApiException.BadParameter($"input_extra[{i}]", $"input_extra[{i}] must be an object");
            ids.AddRange(tokenizer.EncodeText(SnippetSeparator + (new RequestBody(extra[i], $"input_extra[{i}]").String("text") ?? "")));
        }
        ids.AddRange(fim.AsSpan(bos).ToArray());
        ids.AddRange(tokenizer.EncodeText(body.String("prompt") ?? ""));
        return [.. ids];
    }

    private static JsonObject Final(string content, GenerationSummary s, string model)
    {
        double promptMs = s.PromptTime.TotalMilliseconds, decodeMs = s.DecodeTime.TotalMilliseconds;
        return new JsonObject
        {
            ["content"] = content,
            ["tokens"] = new JsonArray(),
            ["id_slot"] = s.Slot,
            ["stop"] = true,
            ["model"] = model,
            ["tokens_predicted"] = s.Tokens.Count,
            ["tokens_evaluated"] = s.PromptTokens,
            ["tokens_cached"] = s.CachedPromptTokens,
            ["stop_type"] = s.Reason switch { FinishReason.EndOfSequence => "eos", FinishReason.StopString => "word", _ => "limit" },
            ["stopping_word"] = s.StopWord ?? "",
            ["truncated"] = false,
            ["timings"] = new JsonObject
            {
                ["cache_n"] = s.CachedPromptTokens,
                ["prompt_n"] = s.ComputedPromptTokens,
                ["prompt_ms"] = promptMs,
                ["prompt_per_second"] = promptMs > 0 ? s.ComputedPromptTokens * 1000.0 / promptMs : 0,
                ["predicted_n"] = s.Tokens.Count,
                ["predicted_ms"] = decodeMs,
                ["predicted_per_second"] = decodeMs > 0 ? s.Tokens.Count * 1000.0 / decodeMs : 0,
            },
        };
    }
}
