using Tune.Formats;

namespace Tune.Tests.Formats;

public sealed class AtomicFileTests
{
    [Fact]
    public void WriterThatThrowsLeavesNothingBehind()
    {
        using var dir = new TempDirectory();
        string path = dir.File("out.bin");
        var e = Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, stream =>
        {
            stream.Write(new byte[1000]);
            throw new InvalidOperationException("disk on fire");
        }));
        Assert.Equal("disk on fire", e.Message);
        Assert.Empty(dir.FileNames());
    }

    [Fact]
    public void CancelledWriterKeepsThePreviousFile()
    {
        using var dir = new TempDirectory();
        string path = dir.File("out.bin");
        File.WriteAllText(path, "previous");
        Assert.Throws<OperationCanceledException>(() => AtomicFile.Write(path, stream =>
        {
            stream.WriteByte(42);
            throw new OperationCanceledException();
        }));
        Assert.Equal("previous", File.ReadAllText(path));
        Assert.Equal(new[] { "out.bin" }, dir.FileNames());
    }

    [Fact]
    public void CompletedWriteReplacesTheFile()
    {
        using var dir = new TempDirectory();
        string path = dir.File("out.bin");
        File.WriteAllText(path, "previous contents, longer");
        AtomicFile.Write(path, stream => stream.Write("new"u8));
        Assert.Equal("new", File.ReadAllText(path));
        Assert.Equal(new[] { "out.bin" }, dir.FileNames());
    }

    [Fact]
    public void TheRealNameIsAbsentWhileWriting()
    {
        using var dir = new TempDirectory();
        string path = dir.File("out.bin");
        AtomicFile.Write(path, stream =>
        {
            stream.WriteByte(1);
            Assert.False(File.Exists(path));
        });
        Assert.True(File.Exists(path));
    }

    [Fact]
    public void SafetensorsWriteWhoseFillThrowsLeavesNoFile()
    {
        using var dir = new TempDirectory();
        TensorSource failing = new("b", DType.F32, [4], _ => throw new IOException("source shard unreadable"));
        Assert.Throws<IOException>(() => SafetensorsWriter.Write(dir.File("model.safetensors"), [SampleTensors.Source("a", DType.F32, 4), failing]));
        Assert.Empty(dir.FileNames());
    }

    [Fact]
    public void ShardedWriteThatFailsWritesNoIndex()
    {
        using var dir = new TempDirectory();
        TensorSource failing = new("z", DType.F32, [4], _ => throw new IOException("source shard unreadable"));
        Assert.Throws<IOException>(() => SafetensorsWriter.WriteSharded(dir.Path, [.. SampleTensors.Mixed(), failing], 3));
        Assert.DoesNotContain("model.safetensors.index.json", dir.FileNames());
        Assert.DoesNotContain("model-00003-of-00003.safetensors", dir.FileNames());
        Assert.All(dir.FileNames(), name => Assert.EndsWith(".safetensors", name));
    }
}
