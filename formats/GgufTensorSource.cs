namespace Tune.Formats;

/// <summary>
/// A tensor to be written to GGUF: name, ggml type, dimensions in ggml order (ne[0] innermost) and a writer of its
/// bytes. <paramref name="Write"/> runs once, when the writer reaches the tensor, and must put exactly
/// <see cref="ByteLength"/> bytes into the sink, already encoded in <paramref name="Type"/> (F32 values, or Q8_0 /
/// Q4_K … blocks from a quantiser), so only one tensor, or one piece of it, is in memory at a time.
/// </summary>
public sealed record GgufTensorSource(string Name, GgmlType Type, long[] Dimensions, Action<GgufTensorSink> Write)
{
    public long ByteLength => Type.ByteCount(Dimensions);
}

/// <summary>Receives one tensor's bytes in order and refuses more than the tensor holds.</summary>
public sealed class GgufTensorSink
{
    private readonly Stream _stream;
    private readonly string _name;
    private readonly WriteBehind _writeBehind;

    internal GgufTensorSink(Stream stream, string name, long length, WriteBehind writeBehind)
    {
        _stream = stream;
        _name = name;
        Remaining = length;
        _writeBehind = writeBehind;
    }

    public long Remaining { get; private set; }

    public void Write(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > Remaining)
            throw new InvalidOperationException($"tensor \"{_name}\": {bytes.Length} more bytes written with only {Remaining} left");
        _stream.Write(bytes);
        Remaining -= bytes.Length;
        _writeBehind.Advance();
    }
}
