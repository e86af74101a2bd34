using Tune.Cli;
using Tune.Convert;
using Tune.Formats;

namespace Tune.Tests.Convert;

/// <summary>
/// Whole conversions of small random checkpoints, read back with GgufFile: every tensor holds what the HF tensors
/// and the formulas of gguf.md §2.5 say, in each output type, and `tune convert` / `tune inspect` work end to end.
/// </summary>
[Collection("torch")]
public sealed class ConverterTests
{
    private static void AssertEveryTensorMatches(string gguf, string checkpointDir, Func<float, float> encode)
    {
        using var file = GgufFile.Open(gguf);
        using var checkpoint = CheckpointDirectory.Open(checkpointDir);
        Assert.NotEmpty(file.Tensors);
        foreach (GgufTensorInfo t in file.Tensors)
        {
            float[] actual = GgufTensorValues.Read(file, t.Name);
            float[] expected = ExpectedTensors.For(checkpoint, t.Name);
            Assert.True(expected.Length == actual.Length, $"{t.Name}: {actual.Length} values, expected {expected.Length}");
            bool exact = t.Type == GgmlType.F32;
            for (int i = 0; i < actual.Length; i++)
            {
                float want = exact ? expected[i] : encode(expected[i]);
                if (BitConverter.SingleToInt32Bits(want) != BitConverter.SingleToInt32Bits(actual[i]))
                    Assert.Fail($"{t.Name}[{i}] = {actual[i]}, expected {want} (from {expected[i]})");
            }
        }
    }

    [Fact]
    public void ABf16CheckpointBecomesABf16FileWithEveryValueInPlace()
    {
        string checkpoint = ConvertModels.Checkpoint(ConvertModels.Base, dtype: DType.BF16);
        string gguf = ConvertModels.Convert(checkpoint, "base-bf16.gguf");
        AssertEveryTensorMatches(gguf, checkpoint, v => v);
        using var file = GgufFile.Open(gguf);
        Assert.Equal(GgmlType.BF16, file.Tensor("blk.1.ffn_gate_exps.weight").Type);
        Assert.Equal(GgmlType.F32, file.Tensor("blk.1.ffn_gate_inp.weight").Type);
        Assert.Equal(GgmlType.F32, file.Tensor("blk.1.attn_kv_a_norm.weight").Type);
        Assert.Equal(32u, file.Get<uint>("general.file_type"));
    }

    [Fact]
    public void F32BecomesF16AndBf16WithRoundToNearestEven()
    {
        string checkpoint = ConvertModels.Checkpoint(ConvertModels.Base);
        AssertEveryTensorMatches(ConvertModels.Convert(checkpoint, "base-f16.gguf", GgmlType.F16), checkpoint, v => (float)(Half)v);
        AssertEveryTensorMatches(ConvertModels.Convert(checkpoint, "base-bf16-from-f32.gguf", GgmlType.BF16), checkpoint,
            v => FloatBits.Bf16ToFloat(FloatBits.FloatToBf16(v)));
    }

    // Half a step of rounding plus the fp16 rounding of the scale, which q (up to 127) multiplies.
    private const float MaxQ8Error = 0.5f + 127f / 2048 + 1e-4f;

    [Fact]
    public void Q8_0KeepsEachValueWithinHalfAStepOfItsBlock()
    {
        string checkpoint = ConvertModels.Checkpoint(ConvertModels.Base);
        string gguf = ConvertModels.Convert(checkpoint, "base-q8_0.gguf", GgmlType.Q8_0);
        using var file = GgufFile.Open(gguf);
        using var source = CheckpointDirectory.Open(checkpoint);
        foreach (GgufTensorInfo t in file.Tensors.Where(t => t.Type == GgmlType.Q8_0))
        {
            float[] actual = GgufTensorValues.Read(file, t.Name), expected = ExpectedTensors.For(source, t.Name);
            for (int b = 0; b < actual.Length / 32; b++)
            {
                float step = 0;
                for (int j = 32 * b; j < 32 * b + 32; j++) step = MathF.Max(step, MathF.Abs(expected[j]) / 127);
                for (int j = 32 * b; j < 32 * b + 32; j++)
                    Assert.True(MathF.Abs(actual[j] - expected[j]) <= step * MaxQ8Error, $"{t.Name}[{j}]: {actual[j]} for {expected[j]}");
            }
        }
        Assert.Equal(GgmlType.F16, file.Tensor("blk.0.attn_k_b.weight").Type);
        Assert.Equal(7u, file.Get<uint>("general.file_type"));
    }

    [Fact]
    public void TheLegacyLayoutKeepsKvBAsItIs()
    {
        string checkpoint = ConvertModels.Checkpoint(ConvertModels.Base);
        string gguf = ConvertModels.Convert(checkpoint, "base-legacy.gguf", layout: KvLayout.Legacy);
        AssertEveryTensorMatches(gguf, checkpoint, v => v);
        using var file = GgufFile.Open(gguf);
        Assert.False(file.TryGetTensor("blk.0.attn_k_b.weight", out _));
        Assert.Equal([32, 128], file.Tensor("blk.0.attn_kv_b.weight").Dimensions);
        Assert.Equal(4u, file.Get<uint>("deepseek2.attention.head_count_kv"));
    }

    [Fact]
    public void WhereLlamaCppDepartsFromHfTheFileCompensates()
    {
        string checkpoint = ConvertModels.Checkpoint(ConvertModels.Quirks);
        string gguf = ConvertModels.Convert(checkpoint, "quirks-f32.gguf");
        using var file = GgufFile.Open(gguf);
        using var source = CheckpointDirectory.Open(checkpoint);
        var compat = LlamaCppCompatibility.For(source.Config);

        float[] q = GgufTensorValues.Read(file, "blk.2.attn_q.weight"), hf = source.ReadFloat32("model.layers.2.self_attn.q_proj.weight");
        int row = ConvertModels.Quirks.HiddenSize, head = ConvertModels.Quirks.QHeadDim, nope = ConvertModels.Quirks.QkNopeHeadDim;
        for (int i = 0; i < q.Length; i++)
        {
            double factor = i / row % head < nope ? compat.QueryScale.Nope : compat.QueryScale.Rope;
            Assert.Equal(hf[i] * (float)factor, q[i]);
        }
        Assert.True(compat.QueryScale.Rope > 1.1, "mscale 1.0 over mscale_all_dim 0.707 scales the rope rows");

        Assert.Equal(1u, file.Get<uint>("deepseek2.expert_shared_count"));
        Assert.All(GgufTensorValues.Read(file, "blk.1.ffn_down_shexp.weight"), v => Assert.Equal(0f, v));
        Assert.False(file.TryGetTensor("output.weight", out _));
    }

    [Fact]
    public async Task ConvertAndInspectWorkFromTheCommandLine()
    {
        string checkpoint = ConvertModels.Checkpoint(ConvertModels.Base, dtype: DType.BF16);
        string gguf = Path.Combine(ConvertModels.NewDirectory("cli"), "tiny.gguf");
        var (output, error) = (new StringWriter(), new StringWriter());
        int exit = await Program.Run(["convert", "--model", checkpoint, "--out", gguf, "--type", "f16", "--name", "Tiny Test"], output, error);
        Assert.True(exit == 0, error.ToString());
        Assert.Contains("wrote", output.ToString());
        Assert.Contains("44 tensors", output.ToString());
        Assert.Contains("44/44 tensors", error.ToString());
        Assert.Contains("MB/s", error.ToString());
        Assert.Contains("note: q_lora_rank is null", error.ToString());

        output = new StringWriter();
        exit = await Program.Run(["inspect", gguf], output, error);
        Assert.Equal(0, exit);
        string text = output.ToString();
        Assert.Contains("general.name", text);
        Assert.Contains("\"Tiny Test\"", text);
        Assert.Matches(@"deepseek2\.attention\.head_count_kv\s+u32\s+1", text);
        Assert.Matches(@"tokenizer\.ggml\.tokens\s+arr\[str\]\s+\[""!"", .*\(102,400 items\)\]", text);
        Assert.Matches(@"blk\.0\.attn_k_b\.weight\s+f16\s+\{16, 32, 4\}\s+4,096", text);
        Assert.Contains("44 tensors", text);
        File.Delete(gguf);
    }
}
