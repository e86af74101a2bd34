using System.Buffers.Binary;
using System.Text;

namespace Tune.Tests.Formats;

/// <summary>Builds safetensors files byte by byte, so tests can make exactly the damage they want.</summary>
internal static class RawSafetensors
{
    public static void Write(string path, string headerJson, int dataBytes, ulong? claimedHeaderLength = null)
    {
        byte[] header = Encoding.UTF8.GetBytes(headerJson);
        byte[] file = new byte[8 + header.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(file, claimedHeaderLength ?? (ulong)header.Length);
        header.CopyTo(file, 8);
        for (int i = 0; i < dataBytes; i++) file[8 + header.Length + i] = (byte)(i + 1);
        File.WriteAllBytes(path, file);
    }
}
