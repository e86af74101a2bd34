using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Tune.Serve.Http;

/// <summary>How a dialect spells an error body.</summary>
public enum ErrorShape
{
    /// <summary><c>{"error":{"message","type","param","code"}}</c> (OpenAI, DeepSeek, llama.cpp).</summary>
    OpenAi,

    /// <summary><c>{"error":"message"}</c> (Ollama).</summary>
    Ollama,
}

/// <summary>JSON bodies, server-sent events and NDJSON lines, and the error guard every endpoint runs in.</summary>
public static class ResponseWriter
{
    private static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string Serialize(JsonNode node) => node.ToJsonString(Json);

    public static async Task JsonAsync(HttpContext http, JsonNode body, int status = 200)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json; charset=utf-8";
        await http.Response.WriteAsync(Serialize(body), Encoding.UTF8, http.RequestAborted);
    }

    public static void StartEvents(HttpContext http)
    {
        http.Response.StatusCode = 200;
        http.Response.ContentType = "text/event-stream; charset=utf-8";
        http.Response.Headers.CacheControl = "no-cache";
    }

    /// <summary>One SSE event, <c>data: {json}\n\n</c>, flushed so the client sees each token as it comes.</summary>
    public static async Task EventAsync(HttpContext http, string data)
    {
        await http.Response.WriteAsync("data: " + data + "\n\n", Encoding.UTF8, http.RequestAborted);
        await http.Response.Body.FlushAsync(http.RequestAborted);
    }

    public static async Task LineAsync(HttpContext http, JsonNode node)
    {
        await http.Response.WriteAsync(Serialize(node) + "\n", Encoding.UTF8, http.RequestAborted);
        await http.Response.Body.FlushAsync(http.RequestAborted);
    }

    public static JsonNode Error(ApiException e, ErrorShape shape) => shape switch
    {
        ErrorShape.Ollama => new JsonObject { ["error"] = e.Message },
        _ => new JsonObject
        {
            ["error"] = new JsonObject { ["message"] = e.Message, ["type"] = e.Type, ["param"] = e.Param, ["code"] = e.Code },
        },
    };

    /// <summary>
    /// Runs an endpoint so that bad input becomes an error response and never escapes: the server keeps serving.
    /// Once a stream has started its status is sent, so a late error goes out as one last event instead.
    /// </summary>
    public static async Task GuardAsync(HttpContext http, ErrorShape shape, Func<Task> endpoint)
    {
        try
        {
            await endpoint();
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // The client went away; the engine has seen the same token and freed the slot.
        }
        catch (Exception e)
        {
            ApiException error = e switch
            {
                ApiException api => api,
                ArgumentException or FormatException or InvalidDataException => new ApiException(400, e.Message),
                _ => new ApiException(500, $"internal error: {e.Message}", type: "server_error"),
            };
            if (!http.Response.HasStarted) await JsonAsync(http, Error(error, shape), error.Status);
            else if (shape == ErrorShape.Ollama) await LineAsync(http, Error(error, shape));
            else await EventAsync(http, Serialize(Error(error, shape)));
        }
    }
}
