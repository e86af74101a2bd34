using Tune.Convert;
using Tune.Formats;
using Tune.Model;
using Tune.Model.Tokenization;
using Tune.Serve.Gguf;
using Tune.Tests.Convert;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Tune.Tests.Gguf;

/// <summary>
/// An f32 GGUF loaded into the graph computes what the Hugging Face checkpoint it was converted from computes, for
/// every conversion rewrite (split and legacy kv_b, query compression with normalised top-k, and the quirks file:
/// tied embeddings, an all-zero shared expert, query rows rescaled for mscale ≠ mscale_all_dim); and the tokenizer
/// read from GGUF metadata alone is the tokenizer.json one.
/// </summary>
[Collection("torch")]
public sealed class GgufLoaderTests(ITestOutputHelper output)
{
    public static TheoryData<string> Cases => ["base split", "base legacy", "q_lora + norm_topk_prob", "quirks"];

    private static (DeepSeekV2Config Config, KvLayout Layout) Case(string name) => name switch
    {
        "base split" => (ConvertModels.Base, KvLayout.Split),
        "base legacy" => (ConvertModels.Base, KvLayout.Legacy),
        "q_lora + norm_topk_prob" => (ConvertModels.QLora, KvLayout.Split),
        "quirks" => (ConvertModels.Quirks, KvLayout.Split),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    private static readonly int[] Prompt = [100000, 1558, 962, 7, 245, 11, 270, 2069, 25, 185, 207, 3220, 245, 919, 270];

    [Theory]
    [MemberData(nameof(Cases))]
    public void AnF32GgufComputesTheCheckpointItCameFrom(string name)
    {
        (DeepSeekV2Config config, KvLayout layout) = Case(name);
        string checkpoint = ConvertModels.Checkpoint(config);
        string gguf = ConvertModels.Convert(checkpoint, $"loader-{name.Replace(' ', '-').Replace("+", "and")}.gguf", GgmlType.F32, layout);
        try
        {
            float[,] expected, actual;
            using (var source = CheckpointDirectory.Open(checkpoint))
            using (var hf = DeepSeekV2ForCausalLM.Load(source, TorchRuntime.Cpu))
                expected = Logits(hf, Prompt);
            using (var loaded = GgufModel.Load(gguf, TorchRuntime.Cpu, threads: 2))
            {
                Assert.Equal(config with { InitializerRange = loaded.Model.Config.InitializerRange, TorchDtype = loaded.Model.Config.TorchDtype },
                    Comparable(loaded.Model.Config, config));
                actual = Logits(loaded.Model, Prompt);
            }
            double maxDiff = 0, maxLogit = 0;
            for (int t = 0; t < expected.GetLength(0); t++)
                for (int v = 0; v < expected.GetLength(1); v++)
                {
                    maxDiff = Math.Max(maxDiff, Math.Abs(expected[t, v] - actual[t, v]));
                    maxLogit = Math.Max(maxLogit, Math.Abs(expected[t, v]));
                }
            output.WriteLine($"{name}: max |Δlogit| {maxDiff:E2} (largest |logit| {maxLogit:F2})");
            Assert.True(maxLogit > 1, "logits this small would make the comparison weak");
            Assert.True(maxDiff <= 1e-4, $"max |Δlogit| {maxDiff:E2} > 1e-4");
        }
        finally
        {
            File.Delete(gguf);
        }
    }

    [Fact]
    public void TheTokenizerInGgufMetadataIsTheTokenizerJsonOne()
    {
        string gguf = ConvertModels.Convert(ConvertModels.Checkpoint(ConvertModels.Base), "loader-tokenizer.gguf", GgmlType.F32);
        try
        {
            using GgufFile file = GgufFile.Open(gguf);
            TokenizerJson fromGguf = GgufTokenizer.Read(file);
            TokenizerJson fromJson = TokenizerJson.Load(Path.Combine(RepoPaths.Tokenizers, "tokenizer.json"), Path.Combine(RepoPaths.Tokenizers, "tokenizer_config.json"));
            Assert.Equal(GgufVocabulary.RegexHash(fromJson), GgufVocabulary.RegexHash(fromGguf));
            Assert.Equal(fromJson.TokensById, fromGguf.TokensById);
            Assert.Equal(fromJson.Merges, fromGguf.Merges);

            DeepSeekTokenizer expected = DeepSeekTokenizer.FromJson(fromJson), actual = DeepSeekTokenizer.FromJson(fromGguf);
            Assert.Equal((expected.BosId, expected.EosId, expected.PadId, expected.AddBos, expected.Fim, expected.ChatTemplate),
                (actual.BosId, actual.EosId, actual.PadId, actual.AddBos, actual.Fim, actual.ChatTemplate));
            string[] texts =
            [
                "def quicksort(xs):\n    return sorted(xs)  # 12345\r\n", "Führer ü 日本語 😀 1234567  \n\n x", "안녕하세요, мир! ",
                "<｜fim▁begin｜>a<｜fim▁hole｜>b<｜fim▁end｜>", "<｜User｜>hi<｜Assistant｜>",
            ];
            foreach (string text in texts)
            {
                Assert.Equal(expected.EncodeText(text), actual.EncodeText(text));
                Assert.Equal(expected.EncodeWithAddedTokens(text), actual.EncodeWithAddedTokens(text));
                Assert.Equal(expected.Decode(expected.EncodeText(text), skipSpecial: false), actual.Decode(actual.EncodeText(text), skipSpecial: false));
            }
        }
        finally
        {
            File.Delete(gguf);
        }
    }

    /// <summary>What the file can say: the GGUF config, with the fields conversion rewrites mapped back to the HF ones.</summary>
    private static DeepSeekV2Config Comparable(DeepSeekV2Config loaded, DeepSeekV2Config hf) => loaded with
    {
        // The converter folds these into what llama.cpp computes; the graph then computes the same thing.
        NSharedExperts = hf.NSharedExperts == 0 ? 0 : loaded.NSharedExperts,
        RoutedScalingFactor = hf.NormTopkProb ? hf.RoutedScalingFactor : loaded.RoutedScalingFactor,
        RopeScaling = loaded.RopeScaling is { } y && hf.RopeScaling is { } h ? y with { Mscale = h.Mscale, MscaleAllDim = Math.Round(y.MscaleAllDim, 6) } : loaded.RopeScaling,
        NGroup = hf.NGroup,
        TopkGroup = hf.TopkGroup,
        NumKeyValueHeads = hf.NumKeyValueHeads,
    };

    private static float[,] Logits(DeepSeekV2ForCausalLM model, int[] ids)
    {
        using var grad = no_grad();
        using var scope = NewDisposeScope();
        Tensor logits = model.Forward(tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0))[0].contiguous();
        float[] flat = logits.data<float>().ToArray();
        var result = new float[ids.Length, flat.Length / ids.Length];
        Buffer.BlockCopy(flat, 0, result, 0, flat.Length * sizeof(float));
        return result;
    }
}
