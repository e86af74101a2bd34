using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tune.Serve;

namespace Tune.Tests.Serve;

/// <summary>A running server on loopback and raw HTTP calls to it (for what the OpenAI SDK has no client for).</summary>
public sealed class ServerClient : IAsyncDisposable
{
    public TuneServer Server { get; }
    public HttpClient Http { get; }

    private ServerClient(TuneServer server, string? apiKey)
    {
        Server = server;
        Http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromMinutes(2) };
        if (apiKey is not null) Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
    }

    public static async Task<ServerClient> StartAsync(ServeOptions? options = null, string? clientKey = null)
    {
        options ??= Options();
        return new ServerClient(await TuneServer.StartAsync(options), clientKey);
    }

    /// <summary>The tiny model with the adapter "styled", one slot, on a free loopback port, on the CPU.</summary>
    public static ServeOptions Options() => new()
    {
        ModelPath = ServeModels.Checkpoint,
        Adapters = new Dictionary<string, string> { ["styled"] = ServeModels.Adapter },
        Port = 0,
        Context = 512,
        Device = "cpu",
        DType = "f32",
    };

    public string ModelId => Server.Context.Model.Id;

    public async Task<(int Status, JsonNode? Body, string Text)> PostAsync(string path, string json)
    {
        using var response = await Http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        string text = await response.Content.ReadAsStringAsync();
        JsonNode? body = null;
        try { body = JsonNode.Parse(text); }
        catch (JsonException) { }
        return ((int)response.StatusCode, body, text);
    }

    public Task<(int Status, JsonNode? Body, string Text)> PostAsync(string path, JsonObject body) => PostAsync(path, body.ToJsonString());

    public async Task<string> GetTextAsync(string path)
    {
        using var response = await Http.GetAsync(path);
        response.EnsureSuccessStatusCode();
        return await response.Content.ReadAsStringAsync();
    }

    /// <summary>One sample's value from /metrics.</summary>
    public async Task<double> MetricAsync(string name)
    {
        string metrics = await GetTextAsync("/metrics");
        string line = metrics.Split('\n').Single(l => l.StartsWith(name + " ", StringComparison.Ordinal));
        return double.Parse(line[(name.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The `data:` payloads of an SSE response, in order.</summary>
    public static List<string> Events(string body) =>
        body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Select(e => e.StartsWith("data: ", StringComparison.Ordinal) ? e["data: ".Length..] : throw new FormatException($"not an SSE data event: {e}"))
            .ToList();

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
    }
}
