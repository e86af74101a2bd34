using Tune.Model;
using Tune.Model.Tokenization;
using Tune.Serve.Engine;

namespace Tune.Serve.Http;

/// <summary>How a request wants to generate, after its dialect's fields are read.</summary>
public sealed record GenerationSettings(SamplingOptions Sampling, int? MaxTokens, IReadOnlyList<string> Stops);

/// <summary>What every endpoint shares: the model, the engine, and the rules for turning a request into a job.</summary>
public sealed class ServeContext(ServedModel model, InferenceEngine engine)
{
    public ServedModel Model { get; } = model;
    public InferenceEngine Engine { get; } = engine;
    public long Created { get; } = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    public const string Fingerprint = "fp_tune";

    /// <summary>The adapter a request's `model` names (null = base), or 404 for a name the server does not serve.</summary>
    public string? ResolveAdapter(string? requested) =>
        Model.TryResolve(requested, out string? adapter)
            ? adapter
            : throw new ApiException(404, $"The model `{requested}` does not exist; this server serves " +
                                          string.Join(", ", new[] { Model.Id }.Concat(Model.AdapterNames)), "model", "model_not_found");

    /// <summary>
    /// Queues the prompt: 400 context_length_exceeded when it leaves no room to generate, 429 when the queue is full.
    /// Generation is capped at the context left after the prompt.
    /// </summary>
    public GenerationRequest Submit(int[] prompt, string? adapter, GenerationSettings settings, string promptField, CancellationToken cancel)
    {
        int context = Engine.Context;
        if (prompt.Length >= context)
            throw new ApiException(400, $"This model's maximum context length is {context} tokens; the prompt has {prompt.Length} " +
                                        "tokens and leaves none to generate", promptField, "context_length_exceeded");
        int room = context - prompt.Length;
        var request = new GenerationRequest
        {
            Prompt = prompt,
            Adapter = adapter,
            Sampling = settings.Sampling,
            MaxTokens = Math.Min(settings.MaxTokens ?? room, room),
            Stops = settings.Stops,
            Cancel = cancel,
        };
        if (!Engine.TrySubmit(request))
            throw new ApiException(429, $"all {Engine.SlotCount} slots are busy and {Engine.MaxQueued} requests are waiting; retry later",
                code: "queue_full", type: "rate_limit_error");
        return request;
    }

    /// <summary>
    /// A prompt the client rendered itself with its own template (Tabby, Twinny and llm-ls write the FIM markers into
    /// the text): marker and BOS/EOS text become those tokens, as llama.cpp's parse_special and Ollama do. Unlike a
    /// chat message or a FIM prefix, nothing in it is structure the server built, so there is nothing to protect.
    /// BOS goes first when the tokenizer wants it and the prompt does not already start with it.
    /// </summary>
    public int[] RenderedPrompt(string text)
    {
        DeepSeekTokenizer tokenizer = Model.Tokenizer;
        int[] ids = tokenizer.EncodeWithAddedTokens(text);
        return tokenizer.AddBos && (ids.Length == 0 || ids[0] != tokenizer.BosId) ? [tokenizer.BosId, .. ids] : ids;
    }

    /// <summary>The PSM prompt for a hole between <paramref name="prefix"/> and <paramref name="suffix"/>; 400 for a model without FIM tokens.</summary>
    public int[] FimPrompt(string prefix, string suffix, string field) =>
        Model.Tokenizer.Fim is null
            ? throw ApiException.BadParameter(field, $"this model's tokenizer has no FIM tokens ({FimTokenIds.BeginToken} …), so it cannot fill in the middle")
            : Tune.Model.Tokenization.FimPrompt.Build(Model.Tokenizer, prefix, suffix).Ids;

    /// <summary>Whether a prompt carries FIM markers its client wrote (a prompt template rendered client-side).</summary>
    public static bool HasFimMarkers(string text) =>
        text.Contains(FimTokenIds.BeginToken, StringComparison.Ordinal) || text.Contains(FimTokenIds.HoleToken, StringComparison.Ordinal);

    /// <summary>The whole generation, for a non-streaming answer.</summary>
    public static async Task<(string Text, GenerationSummary Summary)> CollectAsync(GenerationRequest request, CancellationToken cancel)
    {
        var text = new System.Text.StringBuilder();
        await foreach (GenerationEvent e in request.Events.ReadAllAsync(cancel))
        {
            switch (e)
            {
                case TextDelta delta: text.Append(delta.Text); break;
                case GenerationDone done: return (text.ToString(), done.Summary);
                case GenerationFailed failed: throw new ApiException(500, $"generation failed: {failed.Message}", type: "server_error");
            }
        }
        cancel.ThrowIfCancellationRequested();
        throw new ApiException(503, "the server is shutting down", type: "server_error");
    }

    /// <summary>Sampling fields shared by the dialects, with each dialect's defaults.</summary>
    public static SamplingOptions Sampling(RequestBody body, double temperature, double topP, int topK, string seedField = "seed")
    {
        long? seed = body.Integer(seedField, long.MinValue, long.MaxValue);
        return new SamplingOptions(
            body.Number("temperature", 0, 2) ?? temperature,
            Positive(body, "top_p") ?? topP,
            (int)(body.Integer("top_k", 0, int.MaxValue) ?? topK),
            // A negative seed means "random" to llama.cpp and Ollama clients.
            seed is null or < 0 ? Random.Shared.Next() : (int)(seed.Value % int.MaxValue));
    }

    private static double? Positive(RequestBody body, string field)
    {
        double? value = body.Number(field, 0, 1);
        return value is 0 ? throw ApiException.BadParameter(body.Field(field), $"{body.Field(field)} must be in (0, 1]") : value;
    }
}
