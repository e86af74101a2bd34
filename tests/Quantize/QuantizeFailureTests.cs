using Tune.Formats;
using Tune.Quantize;

namespace Tune.Tests.Quantize;

/// <summary>A weight that cannot be quantised fails the run naming the file and the tensor, and leaves no output file.</summary>
public sealed class QuantizeFailureTests
{
    // The first tensor llama-quantize order reaches, so the failure comes early.
    private const string BadTensor = "output.weight";

    [Theory]
    [InlineData(float.NaN, 1)]
    [InlineData(float.PositiveInfinity, 2)]
    public void NonFiniteWeightNamesTheTensorAndLeavesNoFile(float bad, int threads)
    {
        string dir = Convert.ConvertModels.NewDirectory("nonfinite");
        string input = Path.Combine(dir, "bad.gguf"), output = Path.Combine(dir, "out.gguf");
        long badElement = WriteWithBadWeight(QuantizeModels.Gguf(GgmlType.F32), input, BadTensor, bad);

        using var q = GgufQuantization.Prepare(new QuantizeOptions(input, output, QuantizationMix.Q4_K_M) { Threads = threads });
        var e = Assert.Throws<InvalidDataException>(() => q.Write());
        var inner = Assert.IsType<NonFiniteWeightException>(e.InnerException);
        Assert.Equal(BadTensor, inner.TensorName);
        Assert.Equal(badElement, inner.Index);
        Assert.Contains(input, e.Message);
        Assert.Contains(BadTensor, e.Message);
        Assert.Equal(["bad.gguf"], Directory.GetFiles(dir).Select(Path.GetFileName));
    }

    [Fact]
    public void FailureKeepsAnEarlierFileUnderTheRealName()
    {
        string dir = Convert.ConvertModels.NewDirectory("keep");
        string input = Path.Combine(dir, "bad.gguf"), output = Path.Combine(dir, "out.gguf");
        WriteWithBadWeight(QuantizeModels.Gguf(GgmlType.F32), input, BadTensor, float.NaN);
        File.WriteAllText(output, "earlier");

        using var q = GgufQuantization.Prepare(new QuantizeOptions(input, output, QuantizationMix.Q8_0));
        Assert.Throws<InvalidDataException>(() => q.Write());
        Assert.Equal("earlier", File.ReadAllText(output));
        Assert.Equal(["bad.gguf", "out.gguf"], Directory.GetFiles(dir).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void CancellationLeavesNoFile()
    {
        string dir = Convert.ConvertModels.NewDirectory("cancel");
        string output = Path.Combine(dir, "out.gguf");
        using var cancel = new CancellationTokenSource();
        using var q = GgufQuantization.Prepare(new QuantizeOptions(QuantizeModels.Gguf(GgmlType.F32), output, QuantizationMix.Q4_0));
        Assert.ThrowsAny<OperationCanceledException>(() => q.Write(p => { if (p.TensorsDone == 5) cancel.Cancel(); }, cancel.Token));
        Assert.Empty(Directory.GetFiles(dir));
    }

    /// <summary>A copy of an f32 GGUF with one weight of <paramref name="tensor"/> (in its second half) replaced; returns its element index.</summary>
    private static long WriteWithBadWeight(string source, string path, string tensor, float bad)
    {
        long offset, element;
        using (GgufFile gguf = GgufFile.Open(source))
        {
            GgufTensorInfo t = gguf.Tensor(tensor);
            Assert.Equal(GgmlType.F32, t.Type);
            element = t.ElementCount / 2 + 3;
            offset = gguf.Header.DataOffset + t.Offset + element * sizeof(float);
        }
        File.Copy(source, path);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Write);
        file.Position = offset;
        file.Write(BitConverter.GetBytes(bad));
        return element;
    }
}
