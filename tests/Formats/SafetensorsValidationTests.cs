using Tune.Formats;

namespace Tune.Tests.Formats;

/// <summary>Damaged files: each must fail on open with an InvalidDataException that names the file (and tensor).</summary>
public sealed class SafetensorsValidationTests
{
    private static string F32(string name, int elements, long begin, long end) =>
        $"\"{name}\":{{\"dtype\":\"F32\",\"shape\":[{elements}],\"data_offsets\":[{begin},{end}]}}";

    private static InvalidDataException Rejects(Action<string> makeFile, params string[] messageParts)
    {
        using var dir = new TempDirectory();
        string path = dir.File("bad.safetensors");
        makeFile(path);
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path).Dispose());
        Assert.Contains(path, e.Message);
        foreach (string part in messageParts) Assert.Contains(part, e.Message);
        return e;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    public void FileShorterThanTheLengthFieldIsRejected(int length)
    {
        Rejects(path => File.WriteAllBytes(path, new byte[length]), "too short");
    }

    [Fact]
    public void TruncatedDataIsRejected()
    {
        Rejects(path =>
        {
            RawSafetensors.Write(path, "{" + F32("w", 4, 0, 16) + "}", 16);
            using var stream = new FileStream(path, FileMode.Open);
            stream.SetLength(stream.Length - 5);
        }, "\"w\"", "past the end");
    }

    [Fact]
    public void HeaderLengthPastEndOfFileIsRejected()
    {
        Rejects(path => RawSafetensors.Write(path, "{}", 0, claimedHeaderLength: 1000), "1000", "truncated");
    }

    [Fact]
    public void HeaderClaimingOneHundredGigabytesIsRejectedWithoutAllocating()
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        Rejects(path => RawSafetensors.Write(path, "{}", 0, claimedHeaderLength: 100_000_000_000), "100000000000", "limit");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "opening a lying header must not allocate its claimed size");
    }

    [Fact]
    public void NonJsonHeaderIsRejected()
    {
        Rejects(path => RawSafetensors.Write(path, "not json at all!", 0), "not valid JSON");
    }

    [Fact]
    public void HeaderThatIsNotAnObjectIsRejected()
    {
        Rejects(path => RawSafetensors.Write(path, "[1, 2, 3]", 0), "not a JSON object");
    }

    [Fact]
    public void OverlappingRangesAreRejected()
    {
        Rejects(path => RawSafetensors.Write(path, "{" + F32("a", 2, 0, 8) + "," + F32("b", 2, 4, 12) + "}", 12),
            "\"a\"", "\"b\"", "overlaps");
    }

    [Fact]
    public void GapBetweenRangesIsRejected()
    {
        Rejects(path => RawSafetensors.Write(path, "{" + F32("a", 2, 0, 8) + "," + F32("b", 2, 12, 20) + "}", 20),
            "\"b\"", "unused");
    }

    [Fact]
    public void GapBeforeTheFirstTensorIsRejected()
    {
        Rejects(path => RawSafetensors.Write(path, "{" + F32("a", 2, 4, 12) + "}", 12), "\"a\"", "unused");
    }

    [Fact]
    public void TrailingBytesAfterTheLastTensorAreRejected()
    {
        Rejects(path => RawSafetensors.Write(path, "{" + F32("a", 2, 0, 8) + "}", 9), "trailing");
    }

    [Fact]
    public void TensorPastEndOfFileIsRejected()
    {
        Rejects(path => RawSafetensors.Write(path, "{" + F32("a", 2, 0, 8) + "," + F32("b", 4, 8, 24) + "}", 16),
            "\"b\"", "past the end");
    }

    [Theory]
    [InlineData("\"Q4_K\"", "unsupported dtype \"Q4_K\"")]
    [InlineData("\"bf16\"", "unsupported dtype \"bf16\"")]
    [InlineData("7", "dtype")]
    public void UnknownDTypeIsRejected(string dtype, string message)
    {
        Rejects(path => RawSafetensors.Write(path, $"{{\"w\":{{\"dtype\":{dtype},\"shape\":[2],\"data_offsets\":[0,8]}}}}", 8),
            "\"w\"", message);
    }

    [Fact]
    public void ShapeTimesItemSizeMismatchIsRejected()
    {
        Rejects(path => RawSafetensors.Write(path, "{" + F32("w", 3, 0, 8) + "}", 8), "\"w\"", "needs 12 bytes", "hold 8");
    }

    [Fact]
    public void ShapeWhoseByteCountOverflowsIsRejected()
    {
        Rejects(path => RawSafetensors.Write(path,
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8), "\"w\"", "overflow");
    }

    [Theory]
    [InlineData("[-1]")]
    [InlineData("[1.5]")]
    [InlineData("[\"2\"]")]
    [InlineData("2")]
    public void NonIntegerOrNegativeShapeIsRejected(string shape)
    {
        Rejects(path => RawSafetensors.Write(path, $"{{\"w\":{{\"dtype\":\"U8\",\"shape\":{shape},\"data_offsets\":[0,2]}}}}", 2),
            "\"w\"", "shape");
    }

    [Theory]
    [InlineData("[8,0]", "end before they begin")]
    [InlineData("[0]", "data_offsets")]
    [InlineData("[-8,0]", "non-negative")]
    [InlineData("[0,18446744073709551615]", "non-negative integer")]
    public void BadDataOffsetsAreRejected(string offsets, string message)
    {
        Rejects(path => RawSafetensors.Write(path, $"{{\"w\":{{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":{offsets}}}}}", 8),
            "\"w\"", message);
    }

    [Fact]
    public void DuplicateTensorNameIsRejected()
    {
        Rejects(path => RawSafetensors.Write(path, "{" + F32("a", 1, 0, 4) + "," + F32("a", 1, 4, 8) + "}", 8), "\"a\"", "twice");
    }

    [Fact]
    public void NonStringMetadataValueIsRejected()
    {
        Rejects(path => RawSafetensors.Write(path, "{\"__metadata__\":{\"format\":\"pt\",\"step\":7}}", 0), "__metadata__.step", "strings");
    }

    [Fact]
    public void MissingFileGivesFileNotFound()
    {
        using var dir = new TempDirectory();
        Assert.Throws<FileNotFoundException>(() => SafetensorsFile.Open(dir.File("absent.safetensors")));
    }
}
