using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace Tune.Formats;

/// <summary>
/// The header of a GGUF file (v2 or v3, little-endian): metadata in file order, tensor infos in file order, the
/// alignment and where the data section starts. <see cref="Read"/> checks every count, length, type and offset
/// against the bytes that are really there before it allocates or trusts anything, with the rules llama.cpp's own
/// loader applies (gguf.cpp), so a file this accepts is one llama.cpp can map.
/// </summary>
public sealed record GgufHeader(
    uint Version,
    IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata,
    IReadOnlyList<GgufTensorInfo> Tensors,
    uint Alignment,
    long DataOffset)
{
    /// <summary>"GGUF" read as a little-endian u32.</summary>
    public const uint Magic = 0x46554747;
    public const uint DefaultAlignment = 32;
    public const string AlignmentKey = "general.alignment";

    /// <summary>ggml's GGML_MAX_NAME counts the terminating NUL.</summary>
    public const int MaxTensorNameBytes = 63;
    public const int MaxDimensions = 4;

    private static readonly Encoding StrictUtf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Parses the header from <paramref name="prefix"/>, the first bytes of a file of <paramref name="fileLength"/>
    /// bytes (the whole file, or as much of it as a span can hold). Throws <see cref="InvalidDataException"/> naming
    /// <paramref name="source"/> and the key or tensor at fault.
    /// </summary>
    public static GgufHeader Read(ReadOnlySpan<byte> prefix, long fileLength, string source)
    {
        var r = new Reader(prefix, fileLength, source);
        try
        {
            return Parse(ref r);
        }
        catch (OverflowException)
        {
            throw r.Error("header", "a count or size overflows 64 bits");
        }
    }

    public static long Pad(long offset, long alignment) => checked((offset + alignment - 1) / alignment * alignment);

    private static GgufHeader Parse(ref Reader r)
    {
        uint magic = r.U32("magic");
        if (magic != Magic) throw r.Error("magic", $"0x{magic:X8} is not \"GGUF\"; this is not a GGUF file");
        uint version = r.U32("version");
        if ((version & 0xFFFF) == 0) throw r.Error("version", $"0x{version:X8} looks byte-swapped: big-endian GGUF is not supported");
        if (version is < 2 or > 3) throw r.Error("version", $"{version} is not supported (GGUF v2 and v3 are)");
        long tensorCount = r.I64("tensor count");
        long kvCount = r.I64("metadata count");
        if (tensorCount < 0) throw r.Error("tensor count", $"{tensorCount} is negative");
        if (kvCount < 0) throw r.Error("metadata count", $"{kvCount} is negative");

        // Lists grow as entries are read (never sized from a count), so a lying count fails at the end of the bytes.
        var metadata = new List<KeyValuePair<string, GgufValue>>();
        var keys = new HashSet<string>(StringComparer.Ordinal);
        for (long i = 0; i < kvCount; i++)
        {
            string key = r.String($"key #{i}");
            if (key.Length == 0) throw r.Error($"key #{i}", "is empty");
            if (!keys.Add(key)) throw r.Error($"key \"{key}\"", "appears twice");
            var type = (GgufValueType)r.U32($"type of \"{key}\"");
            if (!GgufValueTypes.IsKnown(type)) throw r.Error($"\"{key}\"", $"value type {(uint)type} is not a GGUF type");
            metadata.Add(new(key, ReadValue(ref r, type, $"\"{key}\"")));
        }

        uint alignment = DefaultAlignment;
        if (metadata.FirstOrDefault(kv => kv.Key == AlignmentKey).Value is { } aligned)
        {
            if (aligned.Type != GgufValueType.UInt32) throw r.Error(AlignmentKey, $"is {aligned.Describe()}, not u32");
            alignment = aligned.As<uint>();
            if (alignment == 0 || (alignment & (alignment - 1)) != 0) throw r.Error(AlignmentKey, $"{alignment} is not a power of two");
        }

        var tensors = new List<GgufTensorInfo>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var offsets = new List<long>();
        for (long i = 0; i < tensorCount; i++)
        {
            string name = r.String($"tensor #{i} name");
            string what = $"tensor \"{name}\"";
            if (Encoding.UTF8.GetByteCount(name) > MaxTensorNameBytes) throw r.Error(what, $"the name is longer than {MaxTensorNameBytes} bytes");
            if (!names.Add(name)) throw r.Error(what, "appears twice");
            uint dims = r.U32(what + " dimension count");
            if (dims > MaxDimensions) throw r.Error(what, $"has {dims} dimensions, more than {MaxDimensions}");
            var ne = new long[dims];
            for (int d = 0; d < dims; d++)
            {
                ne[d] = r.I64(what + $" ne[{d}]");
                if (ne[d] < 0) throw r.Error(what, $"ne[{d}] = {ne[d]} is negative");
            }
            var type = (GgmlType)r.U32(what + " type");
            if (!GgmlTypes.IsKnown(type)) throw r.Error(what, $"type {(uint)type} is not a ggml type");
            // Missing dimensions are 1, as in ggml: a 0-dimensional block-quantised tensor is one partial block.
            long row = ne.Length > 0 ? ne[0] : 1;
            if (row % type.BlockSize() != 0)
                throw r.Error(what, $"{row} elements per row are not whole {type.Name()} blocks of {type.BlockSize()}");
            long bytes = type.ByteCount(ne);
            // Checked for the same reason llama.cpp checks it: element counts of block types can overflow before bytes do.
            Shapes.ElementCount(ne);
            offsets.Add(r.I64(what + " offset"));
            tensors.Add(new GgufTensorInfo(name, type, ne, 0, bytes));
        }

        long dataOffset = Pad(r.Position, alignment);
        if (tensors.Count > 0 && dataOffset > r.FileLength)
            throw r.Error("data section", $"starts at {dataOffset}, past the end of the file ({r.FileLength} bytes)");

        // llama.cpp requires the data packed in info order, each tensor padded to the alignment.
        long expected = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            GgufTensorInfo t = tensors[i];
            if (offsets[i] != expected)
                throw r.Error($"tensor \"{t.Name}\"", $"has offset {offsets[i]}, expected {expected} (tensors are packed in order, aligned to {alignment})");
            long end = checked(dataOffset + expected + t.ByteLength);
            if (end > r.FileLength)
                throw r.Error($"tensor \"{t.Name}\"", $"bytes {dataOffset + expected}..{end} run past the end of the file ({r.FileLength} bytes)");
            tensors[i] = t with { Offset = expected };
            expected = checked(expected + Pad(t.ByteLength, alignment));
        }
        return new GgufHeader(version, metadata, tensors, alignment, dataOffset);
    }

    private static GgufValue ReadValue(ref Reader r, GgufValueType type, string what)
    {
        if (type != GgufValueType.Array) return GgufValue.FromStored(type, null, ReadScalar(ref r, type, what));

        var element = (GgufValueType)r.U32(what + " element type");
        if (!GgufValueTypes.IsKnown(element)) throw r.Error(what, $"array element type {(uint)element} is not a GGUF type");
        if (element == GgufValueType.Array) throw r.Error(what, "arrays of arrays are not supported");
        ulong count = r.U64(what + " element count");
        // Bound the count by the bytes left before allocating: every element takes at least this many.
        int minimum = element == GgufValueType.String ? sizeof(ulong) : element.FixedSize();
        if (count > (ulong)(r.Remaining / minimum))
            throw r.Error(what, $"an array of {count} {element} elements cannot fit in the {r.Remaining} bytes left");
        int n = (int)count;
        object values = element switch
        {
            GgufValueType.String => ReadStrings(ref r, n, what),
            GgufValueType.Bool => ReadBools(ref r, n, what),
            GgufValueType.UInt8 => r.Block(n, what).ToArray(),
            GgufValueType.Int8 => MemoryMarshal.Cast<byte, sbyte>(r.Block(n, what)).ToArray(),
            GgufValueType.UInt16 => MemoryMarshal.Cast<byte, ushort>(r.Block(n * 2, what)).ToArray(),
            GgufValueType.Int16 => MemoryMarshal.Cast<byte, short>(r.Block(n * 2, what)).ToArray(),
            GgufValueType.UInt32 => MemoryMarshal.Cast<byte, uint>(r.Block(n * 4, what)).ToArray(),
            GgufValueType.Int32 => MemoryMarshal.Cast<byte, int>(r.Block(n * 4, what)).ToArray(),
            GgufValueType.Float32 => MemoryMarshal.Cast<byte, float>(r.Block(n * 4, what)).ToArray(),
            GgufValueType.UInt64 => MemoryMarshal.Cast<byte, ulong>(r.Block(checked(n * 8), what)).ToArray(),
            GgufValueType.Int64 => MemoryMarshal.Cast<byte, long>(r.Block(checked(n * 8), what)).ToArray(),
            _ => MemoryMarshal.Cast<byte, double>(r.Block(checked(n * 8), what)).ToArray(),
        };
        return GgufValue.FromStored(GgufValueType.Array, element, values);
    }

    private static object ReadScalar(ref Reader r, GgufValueType type, string what) => type switch
    {
        GgufValueType.UInt8 => r.Block(1, what)[0],
        GgufValueType.Int8 => (sbyte)r.Block(1, what)[0],
        GgufValueType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(r.Block(2, what)),
        GgufValueType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(r.Block(2, what)),
        GgufValueType.UInt32 => r.U32(what),
        GgufValueType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(r.Block(4, what)),
        GgufValueType.Float32 => BinaryPrimitives.ReadSingleLittleEndian(r.Block(4, what)),
        GgufValueType.UInt64 => r.U64(what),
        GgufValueType.Int64 => r.I64(what),
        GgufValueType.Float64 => BinaryPrimitives.ReadDoubleLittleEndian(r.Block(8, what)),
        GgufValueType.Bool => r.Bool(what),
        _ => r.String(what),
    };

    private static string[] ReadStrings(ref Reader r, int count, string what)
    {
        var values = new string[count];
        for (int i = 0; i < count; i++) values[i] = r.String($"{what}[{i}]");
        return values;
    }

    private static bool[] ReadBools(ref Reader r, int count, string what)
    {
        var values = new bool[count];
        for (int i = 0; i < count; i++) values[i] = r.Bool($"{what}[{i}]");
        return values;
    }

    /// <summary>Sequential little-endian reads over the header bytes; every read checks what is left first.</summary>
    private ref struct Reader
    {
        private readonly ReadOnlySpan<byte> _bytes;
        private readonly string _source;
        private int _position;

        public Reader(ReadOnlySpan<byte> bytes, long fileLength, string source)
        {
            _bytes = bytes;
            FileLength = fileLength;
            _source = source;
        }

        public long FileLength { get; }
        public readonly long Position => _position;
        public readonly long Remaining => _bytes.Length - _position;

        public readonly InvalidDataException Error(string what, string why) => new($"{_source}: {what}: {why}");

        public ReadOnlySpan<byte> Block(int length, string what)
        {
            if (length > Remaining)
            {
                string why = _bytes.Length < FileLength
                    ? $"the header is larger than the {_bytes.Length} bytes a reader maps at once"
                    : $"needs {length} bytes at offset {_position}, but the file ends at {FileLength}";
                throw Error(what, why);
            }
            ReadOnlySpan<byte> block = _bytes.Slice(_position, length);
            _position += length;
            return block;
        }

        public uint U32(string what) => BinaryPrimitives.ReadUInt32LittleEndian(Block(4, what));
        public ulong U64(string what) => BinaryPrimitives.ReadUInt64LittleEndian(Block(8, what));
        public long I64(string what) => BinaryPrimitives.ReadInt64LittleEndian(Block(8, what));

        public bool Bool(string what)
        {
            byte b = Block(1, what)[0];
            return b <= 1 ? b == 1 : throw Error(what, $"a bool must be 0 or 1, got {b}");
        }

        public string String(string what)
        {
            ulong length = U64(what + " length");
            if (length > (ulong)Remaining) throw Error(what, $"a string of {length} bytes runs past the end of the header bytes ({Remaining} left)");
            ReadOnlySpan<byte> bytes = Block((int)length, what);
            try { return StrictUtf8.GetString(bytes); }
            catch (DecoderFallbackException) { throw Error(what, "is not valid UTF-8"); }
        }
    }
}
