using Tune.Cli;
using Tune.Convert;
using Tune.Formats;
using Tune.Quantize;
using Tune.Tests.Convert;

namespace Tune.Tests.Quantize;

/// <summary>
/// `tune quantize --input DIR`: a Hugging Face checkpoint quantised in one pass writes the very file that converting
/// to f32 and quantising that file writes (which <see cref="LlamaQuantizeAgreementTests"/> holds equal to llama.cpp's).
/// </summary>
public sealed class CheckpointQuantizationTests
{
    public static TheoryData<string, string> Cases => new()
    {
        // Coder-V2-Lite's awkward row lengths: every k-quant rule and fallback.
        { nameof(QuantizeModels.Shaped), "q4_k_m" },
        { nameof(QuantizeModels.Shaped), "q4_k_s" },
        // A bf16 checkpoint with rescaled query rows (mscale ≠ mscale_all_dim) and zero shared-expert tensors, whose
        // Q4_0 blocks are not zero bytes.
        { nameof(ConvertModels.Quirks), "q4_0" },
        { nameof(ConvertModels.Quirks), "q8_0" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void OnePassEqualsConvertingToF32AndQuantising(string model, string mixName)
    {
        QuantizationMix mix = QuantizationMix.Parse(mixName);
        string checkpoint = model == nameof(QuantizeModels.Shaped)
            ? ConvertModels.Checkpoint(QuantizeModels.Shaped)
            : ConvertModels.Checkpoint(ConvertModels.Quirks, DType.BF16);
        string dir = ConvertModels.NewDirectory($"one-pass-{mix.Name}");
        string f32 = ConvertModels.Convert(checkpoint, $"one-pass-{model}-{Guid.NewGuid():N}.f32.gguf", GgmlType.F32);
        string twoPass = Path.Combine(dir, "two-pass.gguf"), onePass = Path.Combine(dir, "one-pass.gguf");
        QuantizeReport expected, actual;
        using (var q = GgufQuantization.Prepare(new QuantizeOptions(f32, twoPass, mix) { Threads = 2 })) expected = q.Write();
        using (var q = CheckpointQuantization.Prepare(new QuantizeOptions(checkpoint, onePass, mix) { Threads = 2 })) actual = q.Write();
        File.Delete(f32);

        Assert.True(File.ReadAllBytes(twoPass).AsSpan().SequenceEqual(File.ReadAllBytes(onePass)), $"{model} {mix.Name}: the files differ");
        Assert.Equal(expected.Tensors.Select(t => (t.Name, t.Type, t.Bytes)), actual.Tensors.Select(t => (t.Name, t.Type, t.Bytes)));
        foreach (var (e, a) in expected.Tensors.Zip(actual.Tensors))
            Assert.True(Math.Abs(e.RelativeRmsError - a.RelativeRmsError) <= 1e-9 * Math.Max(1, e.RelativeRmsError),
                $"{e.Name}: relative error {a.RelativeRmsError} in one pass, {e.RelativeRmsError} from the f32 file");
        Assert.Equal(expected.BitsPerWeight, actual.BitsPerWeight, 12);
        Assert.Contains(actual.Tensors, t => t.RelativeRmsError > 0);
    }

    [Fact]
    public void NonFiniteWeightNamesTheGgufTensorAndLeavesNoFile()
    {
        string checkpoint = CopyWithBadWeight(ConvertModels.Checkpoint(ConvertModels.Base), "lm_head.weight", float.NaN, out long element);
        string dir = ConvertModels.NewDirectory("one-pass-nan"), output = Path.Combine(dir, "out.gguf");

        using var q = CheckpointQuantization.Prepare(new QuantizeOptions(checkpoint, output, QuantizationMix.Q4_K_M) { Threads = 2 });
        var e = Assert.Throws<InvalidDataException>(() => q.Write());
        var inner = Assert.IsType<NonFiniteWeightException>(e.InnerException);
        Assert.Equal("output.weight", inner.TensorName);
        Assert.Equal(element, inner.Index);
        Assert.Contains("output.weight", e.Message);
        Assert.Empty(Directory.GetFiles(dir));
    }

    [Fact]
    public async Task TheCliQuantisesADirectory()
    {
        string checkpoint = ConvertModels.Checkpoint(ConvertModels.Base);
        string output = Path.Combine(ConvertModels.NewDirectory("one-pass-cli"), "m.gguf"), report = output + ".json";
        var stdout = new StringWriter();
        int exit = await Program.Run(["quantize", "--input", checkpoint, "--out", output, "--type", "q4_k_m", "--report", report], stdout, new StringWriter());

        Assert.Equal(0, exit);
        Assert.Contains("bits per weight", stdout.ToString());
        using GgufFile gguf = GgufFile.Open(output);
        Assert.Equal(QuantizationMix.Q4_K_M.FileType, gguf.Get<uint>(QuantizedMetadata.FileTypeKey));
        Assert.Equal(checkpoint, QuantizeReport.FromJson(File.ReadAllText(report)).Input);
    }

    /// <summary>A copy of an f32 checkpoint with one weight of <paramref name="tensor"/> replaced; <paramref name="element"/> is its index.</summary>
    private static string CopyWithBadWeight(string source, string tensor, float bad, out long element)
    {
        string copy = ConvertModels.NewDirectory("bad-checkpoint");
        foreach (string file in Directory.GetFiles(source)) File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
        long offset;
        string shard;
        using (var checkpoint = CheckpointDirectory.Open(copy))
        {
            var (file, info) = checkpoint.Locate(tensor);
            element = info.ElementCount / 2 + 3;
            offset = info.DataOffset + element * sizeof(float);
            shard = file.Path;
        }
        using var stream = new FileStream(shard, FileMode.Open, FileAccess.Write);
        stream.Position = offset;
        stream.Write(BitConverter.GetBytes(bad));
        return copy;
    }
}
