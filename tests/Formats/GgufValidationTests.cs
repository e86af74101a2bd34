using Tune.Formats;

namespace Tune.Tests.Formats;

/// <summary>Damaged GGUF headers: each must fail on open with an InvalidDataException naming the file and the field.</summary>
public sealed class GgufValidationTests
{
    private static InvalidDataException Rejects(byte[] bytes, params string[] messageParts)
    {
        using var dir = new TempDirectory();
        string path = dir.File("bad.gguf");
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => GgufFile.Open(path).Dispose());
        Assert.Contains(path, e.Message);
        foreach (string part in messageParts) Assert.Contains(part, e.Message);
        return e;
    }

    private static RawGguf OneTensor(uint type = 0, long[]? ne = null, ulong offset = 0) =>
        new RawGguf().Header(1, 0).Tensor("w", ne ?? [4], type, offset).PadTo(32);

    [Theory]
    [InlineData(0)]
    [InlineData(23)]
    public void FilesTooShortForAHeaderAreRejected(int length) => Rejects(new byte[length], "too short");

    [Fact]
    public void WrongMagicIsRejected() => Rejects(new RawGguf().Header(0, 0, magic: 0x46554746).ToArray(), "magic", "not \"GGUF\"");

    [Theory]
    [InlineData(1u, "not supported")]
    [InlineData(4u, "not supported")]
    [InlineData(0x03000000u, "big-endian")]
    public void UnsupportedVersionsAreRejected(uint version, string message) =>
        Rejects(new RawGguf().Header(0, 0, version).ToArray(), "version", message);

    [Fact]
    public void NegativeCountsAreRejected()
    {
        Rejects(new RawGguf().Header(-1, 0).ToArray(), "tensor count", "negative");
        Rejects(new RawGguf().Header(0, -5).ToArray(), "metadata count", "negative");
    }

    [Fact]
    public void ABillionKeysInAFewBytesFailAtTheEndOfTheFileWithoutAllocatingThem()
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        Rejects(new RawGguf().Header(0, 1_000_000_000).KvU32("a", 1).ToArray(), "key #1");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20);
    }

    [Fact]
    public void AStringLongerThanTheFileIsRejectedWithoutAllocatingIt()
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        Rejects(new RawGguf().Header(0, 1).StringBytes("k"u8.ToArray(), claimedLength: 1UL << 60).Zeros(8).ToArray(), "key #0", "runs past");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20);
    }

    [Fact]
    public void AnArrayClaimingMoreElementsThanTheFileHoldsIsRejectedWithoutAllocatingIt()
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        Rejects(new RawGguf().Header(0, 1).String("tokens").U32(9).U32(8).U64(1UL << 40).Zeros(16).ToArray(), "\"tokens\"", "cannot fit");
        Rejects(new RawGguf().Header(0, 1).String("ids").U32(9).U32(5).U64(ulong.MaxValue).Zeros(16).ToArray(), "\"ids\"", "cannot fit");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20);
    }

    [Fact]
    public void UnknownAndNestedValueTypesAreRejected()
    {
        Rejects(new RawGguf().Header(0, 1).String("k").U32(13).U32(0).ToArray(), "\"k\"", "value type 13");
        Rejects(new RawGguf().Header(0, 1).String("k").U32(9).U32(9).U64(1).Zeros(16).ToArray(), "\"k\"", "arrays of arrays");
        Rejects(new RawGguf().Header(0, 1).String("k").U32(9).U32(77).U64(1).Zeros(16).ToArray(), "\"k\"", "element type 77");
    }

    [Fact]
    public void DuplicateAndEmptyKeysAreRejected()
    {
        Rejects(new RawGguf().Header(0, 2).KvU32("k", 1).KvU32("k", 2).ToArray(), "\"k\"", "twice");
        Rejects(new RawGguf().Header(0, 1).KvU32("", 1).ToArray(), "key #0", "empty");
    }

    [Fact]
    public void InvalidUtf8AndBadBoolsAreRejected()
    {
        Rejects(new RawGguf().Header(0, 1).StringBytes([0xC3, 0x28]).U32(4).U32(1).ToArray(), "UTF-8");
        Rejects(new RawGguf().Header(0, 1).String("flag").U32(7).Byte(2).ToArray(), "\"flag\"", "0 or 1");
    }

    [Fact]
    public void AlignmentMustBeAPowerOfTwoStoredAsU32()
    {
        Rejects(new RawGguf().Header(0, 1).KvU32(GgufHeader.AlignmentKey, 24).ToArray(), "general.alignment", "power of two");
        Rejects(new RawGguf().Header(0, 1).String(GgufHeader.AlignmentKey).U32(5).U32(32).ToArray(), "general.alignment", "not u32");
    }

    [Fact]
    public void UnknownGgmlTypesAreRejected()
    {
        Rejects(OneTensor(type: 4).Zeros(32).ToArray(), "\"w\"", "type 4");
        Rejects(OneTensor(type: 1000).Zeros(32).ToArray(), "\"w\"", "type 1000");
    }

    [Fact]
    public void TensorShapesAreChecked()
    {
        Rejects(new RawGguf().Header(1, 0).Tensor("w", [1, 1, 1, 1, 1], 0, 0).PadTo(32).Zeros(32).ToArray(), "\"w\"", "5 dimensions");
        Rejects(OneTensor(ne: [-4]).Zeros(32).ToArray(), "\"w\"", "negative");
        Rejects(OneTensor(type: 8, ne: [16]).Zeros(64).ToArray(), "\"w\"", "not whole q8_0 blocks");
        Rejects(OneTensor(ne: [1L << 40, 1L << 40]).Zeros(32).ToArray(), "overflows");
    }

    [Fact]
    public void NamesMustBeShortAndUnique()
    {
        Rejects(new RawGguf().Header(1, 0).Tensor(new string('n', 64), [1], 0, 0).PadTo(32).Zeros(32).ToArray(), "longer than 63 bytes");
        Rejects(new RawGguf().Header(2, 0).Tensor("w", [1], 0, 0).Tensor("w", [1], 0, 32).PadTo(32).Zeros(64).ToArray(), "\"w\"", "twice");
    }

    [Fact]
    public void OffsetsMustBeThePackedAlignedOnes()
    {
        Rejects(OneTensor(offset: 32).Zeros(64).ToArray(), "\"w\"", "offset 32, expected 0");
        Rejects(new RawGguf().Header(2, 0).Tensor("a", [4], 0, 0).Tensor("b", [4], 0, 16).PadTo(32).Zeros(64).ToArray(), "\"b\"", "offset 16, expected 32");
    }

    [Fact]
    public void TensorDataPastTheEndOfTheFileIsRejected()
    {
        Rejects(OneTensor(ne: [64]).Zeros(100).ToArray(), "\"w\"", "past the end");
        Rejects(new RawGguf().Header(1, 0).Tensor("w", [4], 0, 0).ToArray(), "data section", "past the end");
    }

    [Fact]
    public void AValidFileWithEmptyTensorsAndNoPaddingAfterTheLastOneOpens()
    {
        using var dir = new TempDirectory();
        string path = dir.File("ok.gguf");
        File.WriteAllBytes(path, new RawGguf().Header(2, 1).KvString("general.name", "x")
            .Tensor("empty", [0, 3], 0, 0).Tensor("w", [3], 0, 0).PadTo(32).Zeros(12).ToArray());
        using GgufFile file = GgufFile.Open(path);
        Assert.Equal(0, file.Tensor("empty").ByteLength);
        Assert.Equal(12, file.Tensor("w").ByteLength);
        Assert.Equal("x", file.Get<string>("general.name"));
        var e = Assert.Throws<InvalidDataException>(() => file.Get<uint>("general.name"));
        Assert.Contains("is str, not u32", e.Message);
    }
}
