using System.Text.Json;

namespace Tune.Formats;

/// <summary>
/// <c>model.safetensors.index.json</c> of a sharded Hugging Face checkpoint:
/// <c>{"metadata":{"total_size":N},"weight_map":{tensor: shard file}}</c>.
/// </summary>
internal static class SafetensorsIndex
{
    public const string FileName = "model.safetensors.index.json";

    /// <summary>The weight map, validated: every value is a plain file name in the index's own directory.</summary>
    public static IReadOnlyDictionary<string, string> ReadWeightMap(string path)
    {
        JsonDocument document;
        try { document = JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e); }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("weight_map", out JsonElement map) || map.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{path}: weight_map is missing or not an object");

            var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (JsonProperty entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw new InvalidDataException($"{path}: weight_map.{entry.Name} is {entry.Value.ValueKind}, not a file name");
                string file = entry.Value.GetString()!;
                // A weight map that points outside its directory is damaged or hostile, never a real checkpoint.
                if (file.Length == 0 || file is "." or ".." || file.IndexOfAny(['/', '\\']) >= 0)
                    throw new InvalidDataException($"{path}: weight_map.{entry.Name} is \"{file}\", not a file name in the index's directory");
                if (!weightMap.TryAdd(entry.Name, file))
                    throw new InvalidDataException($"{path}: weight_map.{entry.Name} appears twice");
            }
            if (weightMap.Count == 0) throw new InvalidDataException($"{path}: weight_map lists no tensors");
            return weightMap;
        }
    }

    /// <summary>Writes the index as transformers does: two-space indent, keys sorted, a final newline.</summary>
    public static void Write(string path, long totalSize, IEnumerable<KeyValuePair<string, string>> weightMap)
    {
        AtomicFile.Write(path, stream =>
        {
            using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
            {
                json.WriteStartObject();
                json.WriteStartObject("metadata");
                json.WriteNumber("total_size", totalSize);
                json.WriteEndObject();
                json.WriteStartObject("weight_map");
                foreach ((string tensor, string file) in weightMap.OrderBy(e => e.Key, StringComparer.Ordinal))
                    json.WriteString(tensor, file);
                json.WriteEndObject();
                json.WriteEndObject();
            }
            stream.WriteByte((byte)'\n');
        });
    }
}
