using System.Buffers.Binary;
using System.IO.Compression;

namespace Tune.Trainer;

/// <summary>
/// A minimal PNG encoder (8-bit RGB, no interlace, filter 0 on every scanline): signature, IHDR, one zlib IDAT,
/// IEND. Enough for the routing heat map and the loss curve without a native imaging dependency.
/// </summary>
public static class PngWriter
{
    private static readonly byte[] Signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];
    private static readonly uint[] CrcTable = BuildCrcTable();

    /// <summary>Writes <paramref name="rgb"/> (height rows of width × 3 bytes, top row first) as a PNG file.</summary>
    public static void Write(string path, int width, int height, ReadOnlySpan<byte> rgb)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"{path}: an image needs a positive size, got {width}×{height}");
        if (rgb.Length != (long)width * height * 3) throw new ArgumentException($"{path}: {rgb.Length} bytes do not make a {width}×{height} RGB image");
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = 8;   // bits per channel
        header[9] = 2;   // colour type: RGB
        var compressed = new MemoryStream();
        using (var zlib = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
            for (int y = 0; y < height; y++)
            {
                zlib.WriteByte(0);
                zlib.Write(rgb.Slice(y * width * 3, width * 3));
            }
        byte[] data = compressed.ToArray();
        Tune.Formats.AtomicFile.Write(path, s =>
        {
            s.Write(Signature);
            Chunk(s, "IHDR", header);
            Chunk(s, "IDAT", data);
            Chunk(s, "IEND", []);
        });
    }

    private static void Chunk(Stream s, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        s.Write(word);
        byte[] typeBytes = System.Text.Encoding.ASCII.GetBytes(type);
        s.Write(typeBytes);
        s.Write(data);
        BinaryPrimitives.WriteUInt32BigEndian(word, Crc32(Crc32(0xFFFFFFFFu, typeBytes), data) ^ 0xFFFFFFFFu);
        s.Write(word);
    }

    internal static uint Crc32(uint crc, ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes) crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc;
    }

    /// <summary>The reflected CRC-32 of ISO 3309 (polynomial 0xEDB88320) that PNG chunks carry.</summary>
    private static uint[] BuildCrcTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[n] = c;
        }
        return table;
    }
}
