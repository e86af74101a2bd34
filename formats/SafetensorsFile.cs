using System.IO.MemoryMappedFiles;

namespace Tune.Formats;

/// <summary>
/// A safetensors file mapped read-only into memory. The header is validated on open; tensor bytes are read straight
/// from the mapping, so opening a multi-gigabyte shard costs only its header.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    // Bounded so that a tensor larger than a span can still be converted piece by piece.
    private const int ConversionChunkBytes = 1 << 26;

    private readonly MemoryMappedFile _mapping;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly Dictionary<string, TensorInfo> _byName;
    private bool _disposed;

    private SafetensorsFile(string path, SafetensorsHeader header, MemoryMappedFile mapping, MemoryMappedViewAccessor view)
    {
        Path = path;
        Tensors = header.Tensors;
        Metadata = header.Metadata;
        _mapping = mapping;
        _view = view;
        _byName = header.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        byte* pointer = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        _base = pointer + view.PointerOffset;
    }

    public string Path { get; }

    /// <summary>In header order.</summary>
    public IReadOnlyList<TensorInfo> Tensors { get; }

    /// <summary>The header's <c>__metadata__</c>; empty when it has none.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    public static SafetensorsFile Open(string path)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, FileOptions.RandomAccess);
        MemoryMappedFile? mapping = null;
        try
        {
            SafetensorsHeader header = SafetensorsHeader.Read(stream, path);
            mapping = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            MemoryMappedViewAccessor view = mapping.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            return new SafetensorsFile(path, header, mapping, view);
        }
        catch
        {
            if (mapping is null) stream.Dispose();
            else mapping.Dispose();
            throw;
        }
    }

    public bool TryGet(string name, out TensorInfo info)
    {
        if (_byName.TryGetValue(name, out TensorInfo? found))
        {
            info = found;
            return true;
        }
        info = null!;
        return false;
    }

    public TensorInfo this[string name] =>
        _byName.TryGetValue(name, out TensorInfo? info) ? info : throw new KeyNotFoundException($"{Path}: no tensor named \"{name}\"");

    /// <summary>The first byte of <paramref name="t"/>; valid until this file is disposed. The mapping is read-only: never write through it.</summary>
    public byte* DataPointer(TensorInfo t) => _base + Owned(t).DataOffset;

    public ReadOnlySpan<byte> Bytes(TensorInfo t)
    {
        t = Owned(t);
        if (t.ByteLength > int.MaxValue)
            throw new InvalidOperationException(
                $"{Path}: tensor \"{t.Name}\" has {t.ByteLength} bytes, more than a span can hold; use DataPointer or ReadFloat32");
        return new ReadOnlySpan<byte>(_base + t.DataOffset, (int)t.ByteLength);
    }

    /// <summary>Converts the whole tensor to float32; <paramref name="destination"/> must hold exactly its element count.</summary>
    public void ReadFloat32(TensorInfo t, Span<float> destination)
    {
        t = Owned(t);
        if (destination.Length != t.ElementCount)
            throw new ArgumentException(
                $"{Path}: tensor \"{t.Name}\" has {t.ElementCount} elements but the destination holds {destination.Length}", nameof(destination));
        int itemSize = t.DType.ItemSize();
        int chunkElements = ConversionChunkBytes / itemSize;
        byte* source = _base + t.DataOffset;
        for (int done = 0; done < destination.Length; done += chunkElements)
        {
            int count = Math.Min(chunkElements, destination.Length - done);
            FloatBits.ToFloat32(new ReadOnlySpan<byte>(source + (long)done * itemSize, count * itemSize), t.DType, destination.Slice(done, count));
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _mapping.Dispose();
    }

    // A TensorInfo from another shard, or one edited with `with`, would read the wrong bytes or bytes past the
    // mapping; reads go through this file's own validated entry instead.
    private TensorInfo Owned(TensorInfo t)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_byName.TryGetValue(t.Name, out TensorInfo? mine) || mine.DataOffset != t.DataOffset || mine.ByteLength != t.ByteLength
            || mine.DType != t.DType || !mine.Shape.AsSpan().SequenceEqual(t.Shape))
            throw new ArgumentException($"{Path}: tensor \"{t.Name}\" does not belong to this file", nameof(t));
        return mine;
    }
}
