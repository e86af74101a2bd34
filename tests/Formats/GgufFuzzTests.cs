using System.Buffers.Binary;
using Tune.Formats;
using Xunit.Abstractions;

namespace Tune.Tests.Formats;

/// <summary>
/// Thousands of randomly damaged GGUF files: the reader must accept them or throw InvalidDataException, never crash,
/// hang, read outside the file or allocate what a lying count claims.
/// </summary>
public sealed class GgufFuzzTests(ITestOutputHelper output)
{
    private const int InMemoryCases = 4000;
    private const int OnDiskCases = 300;
    private const long AllocationLimit = 16 << 20;

    private static readonly ulong[] Interesting =
        [0, 1, 2, 3, 4, 7, 8, 9, 12, 13, 31, 32, 33, 63, 64, 255, 256, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF,
         1UL << 32, 1UL << 40, long.MaxValue, 1UL << 63, ulong.MaxValue, ulong.MaxValue - 7];

    private static byte[] ValidFile()
    {
        var metadata = new List<KeyValuePair<string, GgufValue>>
        {
            new("general.architecture", GgufValue.String("deepseek2")),
            new("deepseek2.block_count", GgufValue.UInt32(3)),
            new("deepseek2.rope.scaling.factor", GgufValue.Float32(40)),
            new("deepseek2.expert_weights_norm", GgufValue.Bool(true)),
            new("tokenizer.ggml.tokens", GgufValue.Array(Enumerable.Range(0, 40).Select(i => $"tok{i}").ToArray())),
            new("tokenizer.ggml.token_type", GgufValue.Array(Enumerable.Range(0, 40).Select(i => i % 5).ToArray())),
            new("tokenizer.ggml.scores", GgufValue.Array(new[] { 0.5, -1.0 })),
            new("general.alignment", GgufValue.UInt32(32)),
        };
        var random = new Random(1);
        GgufTensorSource T(string name, GgmlType type, long[] ne) => new(name, type, ne, sink =>
        {
            var bytes = new byte[type.ByteCount(ne)];
            random.NextBytes(bytes);
            sink.Write(bytes);
        });
        var stream = new MemoryStream();
        GgufWriter.WriteTo(stream, metadata,
        [
            T("token_embd.weight", GgmlType.F16, [8, 40]),
            T("blk.0.attn_norm.weight", GgmlType.F32, [8]),
            T("blk.0.ffn_down_exps.weight", GgmlType.Q8_0, [32, 8, 2]),
            T("blk.0.attn_k_b.weight", GgmlType.BF16, [4, 8, 2]),
        ]);
        return stream.ToArray();
    }

    private static byte[] Mutate(byte[] valid, Random random)
    {
        byte[] bytes = (byte[])valid.Clone();
        if (bytes.Length < 16) return bytes;
        switch (random.Next(5))
        {
            case 0: // flip a few bytes anywhere, most often in the header
                for (int i = random.Next(1, 9); i > 0; i--)
                    bytes[random.Next(random.Next(2) == 0 ? Math.Min(bytes.Length, 1200) : bytes.Length)] ^= (byte)random.Next(1, 256);
                return bytes;
            case 1: // a count, length, type or offset replaced by an extreme value
            {
                int at = random.Next(Math.Min(bytes.Length, 1200) - 8);
                ulong v = Interesting[random.Next(Interesting.Length)];
                if (random.Next(2) == 0) BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at), v);
                else BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at), (uint)v);
                return bytes;
            }
            case 2: // truncated
                return bytes[..random.Next(bytes.Length)];
            case 3: // bytes inserted or removed in the middle
            {
                int at = random.Next(bytes.Length);
                int n = random.Next(1, 17);
                return random.Next(2) == 0
                    ? [.. bytes[..at], .. new byte[n], .. bytes[at..]]
                    : [.. bytes[..at], .. bytes[Math.Min(bytes.Length, at + n)..]];
            }
            default: // several of the above
                return Mutate(Mutate(bytes, random), random);
        }
    }

    /// <summary>Null when the reader behaved: accepted a header whose tensors lie in the file, or rejected it cleanly.</summary>
    private static string? Check(byte[] bytes, Func<byte[], GgufHeader> read, out bool rejected)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        rejected = false;
        try
        {
            GgufHeader header = read(bytes);
            foreach (GgufTensorInfo t in header.Tensors)
                if (header.DataOffset + t.Offset + t.ByteLength > bytes.Length) return $"tensor {t.Name} lies outside the file";
        }
        catch (InvalidDataException)
        {
            rejected = true;
        }
        catch (Exception e)
        {
            return $"{e.GetType().Name}: {e.Message}";
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        return allocated > AllocationLimit ? $"allocated {allocated:N0} bytes for a {bytes.Length}-byte file" : null;
    }

    [Fact]
    public void RandomlyDamagedHeadersAreAcceptedOrRejectedCleanly()
    {
        byte[] valid = ValidFile();
        Assert.Null(Check(valid, b => GgufHeader.Read(b, b.Length, "valid"), out bool validRejected));
        Assert.False(validRejected);
        var random = new Random(20260523);
        int rejected = 0;
        var failures = new List<string>();
        for (int i = 0; i < InMemoryCases; i++)
        {
            byte[] bytes = Mutate(valid, random);
            string? failure = Check(bytes, b => GgufHeader.Read(b, b.Length, "fuzz"), out bool wasRejected);
            if (failure is not null) failures.Add($"case {i}: {failure}");
            if (wasRejected) rejected++;
        }
        output.WriteLine($"{InMemoryCases} damaged headers: {rejected} rejected, {InMemoryCases - rejected - failures.Count} accepted");
        Assert.True(failures.Count == 0, string.Join('\n', failures.Take(10)));
        Assert.True(rejected > InMemoryCases / 2, "most damage must be detected");
    }

    [Fact]
    public void RandomlyDamagedFilesOpenOrFailCleanlyThroughTheMapping()
    {
        byte[] valid = ValidFile();
        using var dir = new TempDirectory();
        var random = new Random(7);
        var failures = new List<string>();
        for (int i = 0; i < OnDiskCases; i++)
        {
            string path = dir.File($"{i}.gguf");
            File.WriteAllBytes(path, Mutate(valid, random));
            string? failure = Check(File.ReadAllBytes(path), _ =>
            {
                using GgufFile file = GgufFile.Open(path);
                foreach (GgufTensorInfo t in file.Tensors) _ = file.Bytes(t).ToArray();
                return file.Header;
            }, out _);
            if (failure is not null) failures.Add($"case {i}: {failure}");
        }
        Assert.True(failures.Count == 0, string.Join('\n', failures.Take(10)));
    }
}
