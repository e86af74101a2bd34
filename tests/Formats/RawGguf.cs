using System.Text;

namespace Tune.Tests.Formats;

/// <summary>Builds GGUF bytes field by field, so a test can write exactly the damage it wants.</summary>
internal sealed class RawGguf
{
    private readonly MemoryStream _bytes = new();
    private readonly BinaryWriter _w;

    public RawGguf() => _w = new BinaryWriter(_bytes, Encoding.UTF8, leaveOpen: true);

    public long Length => _bytes.Length;

    public RawGguf Header(long tensors, long kvs, uint version = 3, uint magic = 0x46554747)
    {
        _w.Write(magic);
        _w.Write(version);
        _w.Write(tensors);
        _w.Write(kvs);
        return this;
    }

    public RawGguf String(string s) => StringBytes(Encoding.UTF8.GetBytes(s));

    public RawGguf StringBytes(byte[] bytes, ulong? claimedLength = null)
    {
        _w.Write(claimedLength ?? (ulong)bytes.Length);
        _w.Write(bytes);
        return this;
    }

    public RawGguf U32(uint v) { _w.Write(v); return this; }
    public RawGguf U64(ulong v) { _w.Write(v); return this; }
    public RawGguf I64(long v) { _w.Write(v); return this; }
    public RawGguf Byte(byte v) { _w.Write(v); return this; }

    /// <summary>A u32 metadata pair.</summary>
    public RawGguf KvU32(string key, uint value) => String(key).U32(4).U32(value);

    public RawGguf KvString(string key, string value) => String(key).U32(8).String(value);

    /// <summary>A tensor info: name, dims, ggml type, offset.</summary>
    public RawGguf Tensor(string name, long[] ne, uint type, ulong offset)
    {
        String(name).U32((uint)ne.Length);
        foreach (long d in ne) I64(d);
        return U32(type).U64(offset);
    }

    public RawGguf PadTo(int alignment)
    {
        while (_bytes.Length % alignment != 0) _w.Write((byte)0);
        return this;
    }

    public RawGguf Zeros(int count)
    {
        _w.Write(new byte[count]);
        return this;
    }

    public byte[] ToArray()
    {
        _w.Flush();
        return _bytes.ToArray();
    }
}
