using System.IO.MemoryMappedFiles;

namespace Tune.Formats;

/// <summary>
/// A GGUF file mapped read-only into memory. The whole header is validated on open (<see cref="GgufHeader.Read"/>),
/// so every tensor it lists lies inside the file; tensor bytes are read straight from the mapping.
/// </summary>
public sealed unsafe class GgufFile : IDisposable
{
    // Magic, version and the two counts: anything shorter cannot be GGUF, and an empty file cannot be mapped.
    private const int MinimumLength = 24;

    private readonly MemoryMappedFile _mapping;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly Dictionary<string, GgufValue> _metadata;
    private readonly Dictionary<string, GgufTensorInfo> _tensors;
    private bool _disposed;

    private GgufFile(string path, long length, MemoryMappedFile mapping, MemoryMappedViewAccessor view, byte* pointer)
    {
        Path = path;
        Length = length;
        _mapping = mapping;
        _view = view;
        _base = pointer;
        Header = GgufHeader.Read(new ReadOnlySpan<byte>(pointer, (int)Math.Min(length, int.MaxValue)), length, path);
        _metadata = Header.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        _tensors = Header.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    public string Path { get; }

    public long Length { get; }

    public GgufHeader Header { get; }

    /// <summary>In file order.</summary>
    public IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata => Header.Metadata;

    /// <summary>In file order, which is also data order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors => Header.Tensors;

    public static GgufFile Open(string path)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, FileOptions.RandomAccess);
        MemoryMappedFile? mapping = null;
        MemoryMappedViewAccessor? view = null;
        bool acquired = false;
        try
        {
            long length = stream.Length;
            if (length < MinimumLength)
                throw new InvalidDataException($"{path}: {length} bytes is too short to be a GGUF file");
            mapping = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            view = mapping.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* pointer = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            acquired = true;
            return new GgufFile(path, length, mapping, view, pointer + view.PointerOffset);
        }
        catch
        {
            if (acquired) view!.SafeMemoryMappedViewHandle.ReleasePointer();
            view?.Dispose();
            if (mapping is null) stream.Dispose();
            else mapping.Dispose();
            throw;
        }
    }

    public bool TryGetValue(string key, out GgufValue value) => _metadata.TryGetValue(key, out value!);

    public GgufValue this[string key] =>
        _metadata.TryGetValue(key, out GgufValue? value) ? value : throw new KeyNotFoundException($"{Path}: no metadata key \"{key}\"");

    /// <summary>The value of <paramref name="key"/> as its exact stored type; errors name the file and the key.</summary>
    public T Get<T>(string key) where T : notnull
    {
        try { return this[key].As<T>(); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{Path}: key \"{key}\" {e.Message}", e); }
    }

    public bool TryGetTensor(string name, out GgufTensorInfo info) => _tensors.TryGetValue(name, out info!);

    public GgufTensorInfo Tensor(string name) =>
        _tensors.TryGetValue(name, out GgufTensorInfo? info) ? info : throw new KeyNotFoundException($"{Path}: no tensor named \"{name}\"");

    /// <summary>The first byte of <paramref name="t"/>; valid until this file is disposed. The mapping is read-only.</summary>
    public byte* DataPointer(GgufTensorInfo t) => _base + Header.DataOffset + Owned(t).Offset;

    public ReadOnlySpan<byte> Bytes(GgufTensorInfo t)
    {
        t = Owned(t);
        if (t.ByteLength > int.MaxValue)
            throw new InvalidOperationException($"{Path}: tensor \"{t.Name}\" has {t.ByteLength} bytes, more than a span can hold; use DataPointer");
        return new ReadOnlySpan<byte>(_base + Header.DataOffset + t.Offset, (int)t.ByteLength);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _mapping.Dispose();
    }

    // An info edited with `with`, or from another file, would read outside what the header validated.
    private GgufTensorInfo Owned(GgufTensorInfo t)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _tensors.TryGetValue(t.Name, out GgufTensorInfo? mine) && mine.Offset == t.Offset && mine.ByteLength == t.ByteLength
            ? mine
            : throw new ArgumentException($"{Path}: tensor \"{t.Name}\" does not belong to this file", nameof(t));
    }
}
