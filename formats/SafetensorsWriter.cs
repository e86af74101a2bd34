using System.Buffers.Binary;
using System.Text.Json;

namespace Tune.Formats;

/// <summary>
/// Writes safetensors files and sharded Hugging Face checkpoints, streaming: each tensor's bytes are produced by its
/// <see cref="TensorSource.Fill"/> into one reused buffer and written before the next tensor is asked for.
/// </summary>
public static class SafetensorsWriter
{
    public const string SingleFileName = "model.safetensors";

    /// <summary>
    /// Writes one file atomically. Within the file, tensors are laid out by item size, largest first (keeping the
    /// given order otherwise), as the reference implementation does, so every tensor's data is aligned to its item
    /// size and can be used in place through <see cref="SafetensorsFile.DataPointer"/>.
    /// </summary>
    public static void Write(string path, IReadOnlyList<TensorSource> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        Validate(path, tensors);
        byte[] buffer = [];
        WriteFile(path, tensors, metadata, ref buffer);
    }

    /// <summary>
    /// Writes a checkpoint into <paramref name="directory"/> (created if missing). One shard gives
    /// <c>model.safetensors</c>; more give <c>model-00001-of-0000N.safetensors</c>… as transformers' save_pretrained
    /// names them, with tensors assigned to shards in the given order so that the largest shard is as small as
    /// possible, each shard written atomically and <c>model.safetensors.index.json</c> written last. Returns the
    /// full paths of the files written: the shards in order, then the index if there is one.
    /// </summary>
    public static IReadOnlyList<string> WriteSharded(
        string directory, IReadOnlyList<TensorSource> tensors, int shards, IReadOnlyDictionary<string, string>? metadata = null)
    {
        Validate(directory, tensors);
        int[] assignment = ShardPlan.Assign(tensors.Select(t => t.ByteLength).ToArray(), shards);
        Directory.CreateDirectory(directory);
        string indexPath = Path.Combine(directory, SafetensorsIndex.FileName);
        byte[] buffer = [];

        if (shards == 1)
        {
            string single = Path.Combine(directory, SingleFileName);
            WriteFile(single, tensors, metadata, ref buffer);
            // An index left by an earlier sharded write would take precedence over the new file when loading.
            File.Delete(indexPath);
            return [single];
        }

        var written = new List<string>(shards + 1);
        var weightMap = new List<KeyValuePair<string, string>>(tensors.Count);
        for (int shard = 0; shard < shards; shard++)
        {
            string fileName = $"model-{shard + 1:D5}-of-{shards:D5}.safetensors";
            TensorSource[] members = tensors.Where((_, i) => assignment[i] == shard).ToArray();
            string path = Path.Combine(directory, fileName);
            WriteFile(path, members, metadata, ref buffer);
            written.Add(path);
            weightMap.AddRange(members.Select(t => KeyValuePair.Create(t.Name, fileName)));
        }
        SafetensorsIndex.Write(indexPath, tensors.Sum(t => t.ByteLength), weightMap);
        written.Add(indexPath);
        return written;
    }

    private static void Validate(string destination, IReadOnlyList<TensorSource> tensors)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (TensorSource t in tensors)
        {
            ArgumentException Bad(string why) => new($"{destination}: tensor \"{t.Name}\": {why}", nameof(tensors));
            if (t.Name.Length == 0 || t.Name == SafetensorsHeader.MetadataKey) throw Bad("is not a usable tensor name");
            if (!names.Add(t.Name)) throw Bad("appears twice");
            if (t.Shape.Any(d => d < 0)) throw Bad($"shape {Shapes.Format(t.Shape)} has a negative dimension");
            long bytes;
            try { bytes = t.ByteLength; }
            catch (OverflowException) { throw Bad($"shape {Shapes.Format(t.Shape)} overflows a 64-bit byte count"); }
            if (bytes > Array.MaxLength) throw Bad($"{bytes} bytes is more than one buffer can hold for Fill");
        }
    }

    private static void WriteFile(string path, IReadOnlyList<TensorSource> tensors, IReadOnlyDictionary<string, string>? metadata, ref byte[] buffer)
    {
        TensorSource[] layout = tensors.OrderByDescending(t => t.DType.ItemSize()).ToArray();
        byte[] header = Header(layout, metadata);
        long largest = layout.Length == 0 ? 0 : layout.Max(t => t.ByteLength);
        if (buffer.Length < largest) buffer = GC.AllocateUninitializedArray<byte>((int)largest);
        byte[] data = buffer;

        AtomicFile.Write(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            stream.Write(length);
            stream.Write(header);
            foreach (TensorSource t in layout)
            {
                Span<byte> bytes = data.AsSpan(0, (int)t.ByteLength);
                t.Fill(bytes);
                stream.Write(bytes);
            }
        });
    }

    /// <summary>The JSON header, padded with spaces to a multiple of 8 bytes so the data region starts 8-aligned.</summary>
    private static byte[] Header(IReadOnlyList<TensorSource> layout, IReadOnlyDictionary<string, string>? metadata)
    {
        using var json = new MemoryStream();
        using (var writer = new Utf8JsonWriter(json))
        {
            writer.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                writer.WriteStartObject(SafetensorsHeader.MetadataKey);
                foreach ((string key, string value) in metadata) writer.WriteString(key, value);
                writer.WriteEndObject();
            }
            long offset = 0;
            foreach (TensorSource t in layout)
            {
                writer.WriteStartObject(t.Name);
                writer.WriteString("dtype", t.DType.SafetensorsName());
                writer.WriteStartArray("shape");
                foreach (long dim in t.Shape) writer.WriteNumberValue(dim);
                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                writer.WriteNumberValue(offset += t.ByteLength);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            writer.WriteEndObject();
        }
        int padding = (int)((8 - json.Length % 8) % 8);
        for (int i = 0; i < padding; i++) json.WriteByte((byte)' ');
        return json.ToArray();
    }
}
