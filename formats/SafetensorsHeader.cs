using System.Buffers.Binary;
using System.Text.Json;

namespace Tune.Formats;

/// <summary>
/// Reads and validates a safetensors header: every field is checked before any offset is trusted, so a damaged or
/// hostile file gives an <see cref="InvalidDataException"/> naming the file and tensor, never a wild read or a huge
/// allocation.
/// </summary>
internal sealed record SafetensorsHeader(IReadOnlyList<TensorInfo> Tensors, IReadOnlyDictionary<string, string> Metadata)
{
    /// <summary>The limit of the reference implementation: no real header comes near it.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    public const string MetadataKey = "__metadata__";

    public static SafetensorsHeader Read(FileStream stream, string path)
    {
        long fileLength = stream.Length;
        if (fileLength < 8)
            throw new InvalidDataException(
                $"{path}: {fileLength} bytes is too short for a safetensors file, which starts with an 8-byte header length");

        Span<byte> prefix = stackalloc byte[8];
        stream.Position = 0;
        stream.ReadExactly(prefix);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > MaxHeaderBytes)
            throw new InvalidDataException(
                $"{path}: the header claims {headerLength} bytes, more than the {MaxHeaderBytes}-byte limit; not a safetensors file or damaged");
        if (headerLength > (ulong)(fileLength - 8))
            throw new InvalidDataException(
                $"{path}: the header claims {headerLength} bytes but only {fileLength - 8} follow the length field; the file is truncated");

        byte[] json = GC.AllocateUninitializedArray<byte>((int)headerLength);
        stream.ReadExactly(json);
        long dataStart = 8 + (long)headerLength;
        return Parse(json, path, dataStart, fileLength - dataStart);
    }

    private static SafetensorsHeader Parse(byte[] json, string path, long dataStart, long dataLength)
    {
        JsonDocument document;
        try { document = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: the header is not valid JSON: {e.Message}", e); }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{path}: the header is {document.RootElement.ValueKind}, not a JSON object");

            var names = new HashSet<string>(StringComparer.Ordinal);
            var entries = new List<(TensorInfo Info, long Begin, long End)>();
            IReadOnlyDictionary<string, string> metadata = new Dictionary<string, string>();
            foreach (JsonProperty property in document.RootElement.EnumerateObject())
            {
                if (!names.Add(property.Name))
                    throw new InvalidDataException($"{path}: \"{property.Name}\" appears twice in the header");
                if (property.Name == MetadataKey)
                    metadata = ParseMetadata(property.Value, path);
                else
                    entries.Add(ParseTensor(property, path, dataStart, dataLength));
            }
            CheckTiling(entries, path, dataLength);
            return new SafetensorsHeader(entries.Select(e => e.Info).ToArray(), metadata);
        }
    }

    private static Dictionary<string, string> ParseMetadata(JsonElement value, string path)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{path}: {MetadataKey} is {value.ValueKind}, not an object of strings");
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (JsonProperty entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new InvalidDataException($"{path}: {MetadataKey}.{entry.Name} is {entry.Value.ValueKind}; metadata values must be strings");
            if (!metadata.TryAdd(entry.Name, entry.Value.GetString()!))
                throw new InvalidDataException($"{path}: {MetadataKey}.{entry.Name} appears twice");
        }
        return metadata;
    }

    private static (TensorInfo Info, long Begin, long End) ParseTensor(JsonProperty property, string path, long dataStart, long dataLength)
    {
        string name = property.Name;
        InvalidDataException Bad(string why) => new($"{path}: tensor \"{name}\": {why}");

        JsonElement entry = property.Value;
        if (entry.ValueKind != JsonValueKind.Object) throw Bad($"the entry is {entry.ValueKind}, not an object");

        if (!entry.TryGetProperty("dtype", out JsonElement dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw Bad("dtype is missing or not a string");
        string dtypeName = dtypeElement.GetString()!;
        if (!DTypes.TryParseSafetensors(dtypeName, out DType dtype))
            throw Bad($"unsupported dtype \"{dtypeName}\"; expected one of {string.Join(", ", Enum.GetValues<DType>().Select(t => t.SafetensorsName()))}");

        if (!entry.TryGetProperty("shape", out JsonElement shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw Bad("shape is missing or not an array");
        long[] shape = new long[shapeElement.GetArrayLength()];
        int axis = 0;
        foreach (JsonElement dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out long size) || size < 0)
                throw Bad($"shape[{axis}] is {dim.GetRawText()}, not a non-negative integer");
            shape[axis++] = size;
        }

        if (!entry.TryGetProperty("data_offsets", out JsonElement offsets) || offsets.ValueKind != JsonValueKind.Array
            || offsets.GetArrayLength() != 2)
            throw Bad("data_offsets is missing or not a pair [begin, end]");
        long begin = Offset(offsets[0], "begin");
        long end = Offset(offsets[1], "end");
        if (begin > end) throw Bad($"data_offsets [{begin}, {end}] end before they begin");

        long byteLength;
        try { byteLength = checked(Shapes.ElementCount(shape) * dtype.ItemSize()); }
        catch (OverflowException) { throw Bad($"shape {Shapes.Format(shape)} of {dtypeName} overflows a 64-bit byte count"); }
        if (byteLength != end - begin)
            throw Bad($"shape {Shapes.Format(shape)} of {dtypeName} needs {byteLength} bytes but data_offsets [{begin}, {end}] hold {end - begin}");
        if (end > dataLength)
            throw Bad($"data_offsets [{begin}, {end}] lie past the end of the file, whose data region has {dataLength} bytes");

        return (new TensorInfo(name, dtype, shape, dataStart + begin, byteLength), begin, end);

        long Offset(JsonElement value, string which) =>
            value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out long offset) && offset >= 0
                ? offset
                : throw Bad($"data_offsets {which} is {value.GetRawText()}, not a non-negative integer");
    }

    /// <summary>The tensors must cover the data region exactly once: a gap or overlap means a damaged header.</summary>
    private static void CheckTiling(List<(TensorInfo Info, long Begin, long End)> entries, string path, long dataLength)
    {
        var sorted = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        long covered = 0;
        string? previous = null;
        foreach ((TensorInfo info, long begin, long end) in sorted)
        {
            if (begin < covered)
                throw new InvalidDataException(
                    $"{path}: tensor \"{info.Name}\" (bytes {begin}..{end}) overlaps tensor \"{previous}\", which ends at {covered}");
            if (begin > covered)
                throw new InvalidDataException(
                    $"{path}: tensor \"{info.Name}\" starts at {begin}, leaving bytes {covered}..{begin} of the data region unused"
                    + (previous is null ? "" : $" after tensor \"{previous}\""));
            covered = end;
            previous = info.Name;
        }
        if (covered != dataLength)
            throw new InvalidDataException(
                $"{path}: the tensors cover {covered} bytes but the data region has {dataLength}; the file has trailing bytes"
                + (previous is null ? "" : $" after tensor \"{previous}\""));
    }
}
