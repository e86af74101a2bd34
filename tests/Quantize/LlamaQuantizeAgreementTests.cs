using System.Collections;
using Tune.Formats;
using Tune.Quantize;
using Xunit.Abstractions;

namespace Tune.Tests.Quantize;

/// <summary>
/// `tune quantize` against llama.cpp's llama_model_quantize on the same f16 GGUF (made by `tune convert`) of
/// <see cref="QuantizeModels.Shaped"/>: every tensor gets the same type and the same bytes, in the same order, and
/// the metadata is the same. Two threads on both sides (the bytes must not depend on the split).
/// </summary>
public sealed class LlamaQuantizeAgreementTests(ITestOutputHelper output)
{
    public static TheoryData<string> Mixes => new(QuantizationMix.All.Select(m => m.Name));

    [Theory]
    [MemberData(nameof(Mixes))]
    public void TypesBytesAndMetadataEqualLlamaCpp(string mixName)
    {
        QuantizationMix mix = QuantizationMix.Parse(mixName);
        string input = QuantizeModels.Gguf(GgmlType.F16);
        string dir = Convert.ConvertModels.NewDirectory($"agree-{mix.Name}");
        string theirs = Path.Combine(dir, "llama.gguf"), ours = Path.Combine(dir, "tune.gguf");
        LlamaQuantizeOracle.Quantize(input, theirs, mix, threads: 2);
        using (var q = GgufQuantization.Prepare(new QuantizeOptions(input, ours, mix) { Threads = 2 })) q.Write();

        using GgufFile expected = GgufFile.Open(theirs), actual = GgufFile.Open(ours);
        Assert.Equal(expected.Tensors.Select(t => t.Name), actual.Tensors.Select(t => t.Name));
        foreach (GgufTensorInfo e in expected.Tensors)
        {
            GgufTensorInfo a = actual.Tensor(e.Name);
            Assert.True(e.Type == a.Type, $"{mix.Name} {e.Name} [{string.Join(", ", e.Dimensions)}]: llama.cpp chose {e.Type.Name()}, Tune {a.Type.Name()}");
            Assert.Equal(e.Dimensions, a.Dimensions);
            Assert.True(expected.Bytes(e).SequenceEqual(actual.Bytes(a)), $"{mix.Name} {e.Name} ({e.Type.Name()}): the bytes differ");
        }
        Assert.Equal(expected.Metadata.Select(kv => kv.Key), actual.Metadata.Select(kv => kv.Key));
        foreach (var (key, value) in expected.Metadata) Assert.True(value.Type == actual[key].Type && value.ElementType == actual[key].ElementType
                && StructuralComparisons.StructuralEqualityComparer.Equals(value.Value, actual[key].Value), $"{mix.Name}: metadata {key} differs");
        Assert.True(File.ReadAllBytes(theirs).AsSpan().SequenceEqual(File.ReadAllBytes(ours)), $"{mix.Name}: the files differ");
        output.WriteLine($"{mix.Name}: {expected.Tensors.Count} tensors, {string.Join(", ", expected.Tensors.GroupBy(t => t.Type).Select(g => $"{g.Count()} {g.Key.Name()}"))}; files identical ({new FileInfo(ours).Length:N0} bytes)");
    }
}
