using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace Tune.Formats;

/// <summary>
/// Writes GGUF v3: header, metadata in the given order, tensor infos with offsets as the running sum of sizes padded
/// to the alignment, zero padding to the alignment, then each tensor's bytes padded the same way. The alignment is
/// <c>general.alignment</c> when the metadata has it, else 32 (what llama.cpp's converter uses without writing the key).
/// </summary>
public static class GgufWriter
{
    public const uint Version = 3;

    /// <summary>Writes through a temporary file that is renamed to <paramref name="path"/> only once complete.</summary>
    public static void Write(string path, IReadOnlyList<KeyValuePair<string, GgufValue>> metadata,
        IReadOnlyList<GgufTensorSource> tensors, CancellationToken cancellation = default)
    {
        uint alignment = Validate(metadata, tensors, path);
        AtomicFile.Write(path, stream => WriteValidated(stream, metadata, tensors, alignment, cancellation));
    }

    public static void WriteTo(Stream stream, IReadOnlyList<KeyValuePair<string, GgufValue>> metadata,
        IReadOnlyList<GgufTensorSource> tensors, CancellationToken cancellation = default)
    {
        uint alignment = Validate(metadata, tensors, "GGUF output");
        WriteValidated(stream, metadata, tensors, alignment, cancellation);
    }

    private static void WriteValidated(Stream stream, IReadOnlyList<KeyValuePair<string, GgufValue>> metadata,
        IReadOnlyList<GgufTensorSource> tensors, uint alignment, CancellationToken cancellation)
    {
        var o = new Encoder(stream);
        o.U32(GgufHeader.Magic);
        o.U32(Version);
        o.U64((ulong)tensors.Count);
        o.U64((ulong)metadata.Count);
        foreach (var (key, value) in metadata)
        {
            o.String(key);
            o.U32((uint)value.Type);
            o.Value(value);
        }
        long offset = 0;
        foreach (GgufTensorSource t in tensors)
        {
            o.String(t.Name);
            o.U32((uint)t.Dimensions.Length);
            foreach (long d in t.Dimensions) o.U64((ulong)d);
            o.U32((uint)t.Type);
            o.U64((ulong)offset);
            offset += GgufHeader.Pad(t.ByteLength, alignment);
        }
        o.PadTo(alignment);

        var writeBehind = new WriteBehind(stream);
        foreach (GgufTensorSource t in tensors)
        {
            cancellation.ThrowIfCancellationRequested();
            var sink = new GgufTensorSink(stream, t.Name, t.ByteLength, writeBehind);
            t.Write(sink);
            if (sink.Remaining != 0)
                throw new InvalidOperationException($"tensor \"{t.Name}\": {t.ByteLength - sink.Remaining} of {t.ByteLength} bytes were written");
            o.Zeros(GgufHeader.Pad(t.ByteLength, alignment) - t.ByteLength);
        }
        stream.Flush();
    }

    private static uint Validate(IReadOnlyList<KeyValuePair<string, GgufValue>> metadata, IReadOnlyList<GgufTensorSource> tensors, string target)
    {
        var keys = new HashSet<string>(StringComparer.Ordinal);
        uint alignment = GgufHeader.DefaultAlignment;
        foreach (var (key, value) in metadata)
        {
            if (key.Length == 0) throw new ArgumentException($"{target}: a metadata key is empty");
            if (!keys.Add(key)) throw new ArgumentException($"{target}: metadata key \"{key}\" appears twice");
            if (key != GgufHeader.AlignmentKey) continue;
            if (value.Type != GgufValueType.UInt32) throw new ArgumentException($"{target}: {key} must be u32, not {value.Describe()}");
            alignment = value.As<uint>();
            if (alignment == 0 || (alignment & (alignment - 1)) != 0) throw new ArgumentException($"{target}: {key} = {alignment} is not a power of two");
        }
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (GgufTensorSource t in tensors)
        {
            string what = $"{target}: tensor \"{t.Name}\"";
            if (t.Name.Length == 0 || Encoding.UTF8.GetByteCount(t.Name) > GgufHeader.MaxTensorNameBytes)
                throw new ArgumentException($"{what}: names must have 1 to {GgufHeader.MaxTensorNameBytes} bytes");
            if (!names.Add(t.Name)) throw new ArgumentException($"{what}: appears twice");
            if (t.Dimensions.Length is 0 or > GgufHeader.MaxDimensions)
                throw new ArgumentException($"{what}: {t.Dimensions.Length} dimensions; GGUF tensors have 1 to {GgufHeader.MaxDimensions}");
            if (t.Dimensions.Any(d => d < 0)) throw new ArgumentException($"{what}: negative dimension in {Shapes.Format(t.Dimensions)}");
            try { _ = t.ByteLength; }
            catch (ArgumentException e) { throw new ArgumentException($"{what}: {e.Message}", e); }
        }
        return alignment;
    }

    /// <summary>Little-endian primitives onto the stream, counting the header bytes (the stream need not seek).</summary>
    private sealed class Encoder(Stream stream)
    {
        private static readonly byte[] ZeroBlock = new byte[4096];
        private long _written;

        private void Put(ReadOnlySpan<byte> bytes)
        {
            stream.Write(bytes);
            _written += bytes.Length;
        }

        public void U32(uint v)
        {
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(b, v);
            Put(b);
        }

        public void U64(ulong v)
        {
            Span<byte> b = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(b, v);
            Put(b);
        }

        public void String(string s)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(s);
            U64((ulong)bytes.Length);
            Put(bytes);
        }

        public void Value(GgufValue value)
        {
            if (value.Type != GgufValueType.Array)
            {
                Scalar(value.Value);
                return;
            }
            U32((uint)value.ElementType!.Value);
            U64((ulong)value.Count);
            switch (value.Value)
            {
                case string[] strings: foreach (string s in strings) String(s); break;
                case bool[] bools: foreach (bool b in bools) Put([b ? (byte)1 : (byte)0]); break;
                case byte[] a: Put(a); break;
                case sbyte[] a: Put(MemoryMarshal.AsBytes(a.AsSpan())); break;
                case ushort[] a: Put(MemoryMarshal.AsBytes(a.AsSpan())); break;
                case short[] a: Put(MemoryMarshal.AsBytes(a.AsSpan())); break;
                case uint[] a: Put(MemoryMarshal.AsBytes(a.AsSpan())); break;
                case int[] a: Put(MemoryMarshal.AsBytes(a.AsSpan())); break;
                case ulong[] a: Put(MemoryMarshal.AsBytes(a.AsSpan())); break;
                case long[] a: Put(MemoryMarshal.AsBytes(a.AsSpan())); break;
                case float[] a: Put(MemoryMarshal.AsBytes(a.AsSpan())); break;
                case double[] a: Put(MemoryMarshal.AsBytes(a.AsSpan())); break;
                default: throw new ArgumentException($"{value.Value.GetType().Name} is not a GGUF array");
            }
        }

        private void Scalar(object v)
        {
            Span<byte> b = stackalloc byte[8];
            switch (v)
            {
                case string s: String(s); return;
                case bool x: b[0] = x ? (byte)1 : (byte)0; b = b[..1]; break;
                case byte x: b[0] = x; b = b[..1]; break;
                case sbyte x: b[0] = (byte)x; b = b[..1]; break;
                case ushort x: BinaryPrimitives.WriteUInt16LittleEndian(b, x); b = b[..2]; break;
                case short x: BinaryPrimitives.WriteInt16LittleEndian(b, x); b = b[..2]; break;
                case uint x: BinaryPrimitives.WriteUInt32LittleEndian(b, x); b = b[..4]; break;
                case int x: BinaryPrimitives.WriteInt32LittleEndian(b, x); b = b[..4]; break;
                case float x: BinaryPrimitives.WriteSingleLittleEndian(b, x); b = b[..4]; break;
                case ulong x: BinaryPrimitives.WriteUInt64LittleEndian(b, x); break;
                case long x: BinaryPrimitives.WriteInt64LittleEndian(b, x); break;
                case double x: BinaryPrimitives.WriteDoubleLittleEndian(b, x); break;
                default: throw new ArgumentException($"{v.GetType().Name} is not a GGUF scalar");
            }
            Put(b);
        }

        public void PadTo(uint alignment) => Zeros(GgufHeader.Pad(_written, alignment) - _written);

        public void Zeros(long count)
        {
            for (; count > 0; count -= ZeroBlock.Length) Put(ZeroBlock.AsSpan(0, (int)Math.Min(count, ZeroBlock.Length)));
        }
    }
}
