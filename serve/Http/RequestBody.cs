using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Tune.Serve.Http;

/// <summary>
/// A JSON request body read field by field, so every wrong value is a 400 that names its field. A field that is
/// absent or JSON null takes its default, as the OpenAI API treats them; fields the server does not know are ignored.
/// </summary>
public sealed class RequestBody(JsonElement root, string path = "")
{
    private static readonly JsonElement EmptyObject = JsonDocument.Parse("{}").RootElement.Clone();

    public JsonElement Root { get; } = root;

    /// <summary>An absent nested object: every field takes its default.</summary>
    public static RequestBody Empty(string path) => new(EmptyObject, path);

    public static async Task<RequestBody> ReadAsync(HttpRequest request, CancellationToken cancel)
    {
        JsonElement root;
        try
        {
            using JsonDocument document = await JsonDocument.ParseAsync(request.Body, default, cancel);
            root = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new ApiException(400, $"the request body is not valid JSON: {e.Message}", code: "invalid_json");
        }
        if (root.ValueKind != JsonValueKind.Object)
            throw new ApiException(400, "the request body must be a JSON object", code: "invalid_json");
        return new RequestBody(root);
    }

    private string Name(string field) => path.Length == 0 ? field : $"{path}.{field}";

    private JsonElement? Get(string field) =>
        Root.TryGetProperty(field, out JsonElement value) && value.ValueKind != JsonValueKind.Null ? value : null;

    public bool Has(string field) => Get(field) is not null;

    public string? String(string field)
    {
        if (Get(field) is not { } value) return null;
        if (value.ValueKind != JsonValueKind.String) throw ApiException.BadParameter(Name(field), $"{Name(field)} must be a string");
        return value.GetString();
    }

    public bool? Bool(string field)
    {
        if (Get(field) is not { } value) return null;
        if (value.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            throw ApiException.BadParameter(Name(field), $"{Name(field)} must be true or false");
        return value.GetBoolean();
    }

    public double? Number(string field, double min, double max)
    {
        if (Get(field) is not { } value) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out double number) || number < min || number > max)
            throw ApiException.BadParameter(Name(field), $"{Name(field)} must be a number from {min} to {max}");
        return number;
    }

    public long? Integer(string field, long min, long max)
    {
        if (Get(field) is not { } value) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out long number) || number < min || number > max)
            throw ApiException.BadParameter(Name(field), $"{Name(field)} must be an integer from {min} to {max}");
        return number;
    }

    /// <summary>A nested object, read with field names prefixed (options.temperature).</summary>
    public RequestBody? Object(string field)
    {
        if (Get(field) is not { } value) return null;
        if (value.ValueKind != JsonValueKind.Object) throw ApiException.BadParameter(Name(field), $"{Name(field)} must be an object");
        return new RequestBody(value, Name(field));
    }

    public IReadOnlyList<JsonElement>? Array(string field)
    {
        if (Get(field) is not { } value) return null;
        if (value.ValueKind != JsonValueKind.Array) throw ApiException.BadParameter(Name(field), $"{Name(field)} must be an array");
        return value.EnumerateArray().ToList();
    }

    /// <summary>`stop`: a string or an array of non-empty strings (at most 16, as Continue's maxStopWords).</summary>
    public IReadOnlyList<string> Stops(string field)
    {
        if (Get(field) is not { } value) return [];
        List<string> stops = value.ValueKind switch
        {
            JsonValueKind.String => [value.GetString()!],
            JsonValueKind.Array when value.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String) =>
                value.EnumerateArray().Select(e => e.GetString()!).ToList(),
            _ => throw ApiException.BadParameter(Name(field), $"{Name(field)} must be a string or an array of strings"),
        };
        if (stops.Count > 16) throw ApiException.BadParameter(Name(field), $"{Name(field)} has {stops.Count} strings; at most 16 are allowed");
        if (stops.Any(s => s.Length == 0)) throw ApiException.BadParameter(Name(field), $"{Name(field)} must not contain an empty string");
        return stops;
    }

    public string Field(string field) => Name(field);
}
