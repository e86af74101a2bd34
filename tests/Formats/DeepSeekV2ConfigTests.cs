using Tune.Formats;

namespace Tune.Tests.Formats;

public sealed class DeepSeekV2ConfigTests
{
    private const string Source = "/models/lite/config.json";

    private static string Lite(string key, string value)
    {
        string json = System.Text.RegularExpressions.Regex.Replace(CoderV2LiteConfig.Json, $"\"{key}\": [^,\\n]+", $"\"{key}\": {value}");
        Assert.NotEqual(CoderV2LiteConfig.Json, json);
        return json;
    }

    private static string LiteWithout(string key)
    {
        string json = System.Text.RegularExpressions.Regex.Replace(CoderV2LiteConfig.Json, $"\\s*\"{key}\": [^,\\n]+,", "");
        Assert.NotEqual(CoderV2LiteConfig.Json, json);
        return json;
    }

    private static FormatException Rejects(string json, params string[] messageParts)
    {
        var e = Assert.Throws<FormatException>(() => DeepSeekV2Config.Parse(json, Source));
        Assert.Contains(Source, e.Message);
        foreach (string part in messageParts) Assert.Contains(part, e.Message);
        return e;
    }

    [Fact]
    public void CoderV2LiteBaseLoadsWithExactlyTheSpecValues()
    {
        using var dir = new TempDirectory();
        string path = dir.File("config.json");
        File.WriteAllText(path, CoderV2LiteConfig.Json);
        DeepSeekV2Config c = DeepSeekV2Config.Load(path);

        var expected = new DeepSeekV2Config
        {
            Architecture = "DeepseekV2ForCausalLM",
            ModelType = "deepseek_v2",
            VocabSize = 102400,
            HiddenSize = 2048,
            IntermediateSize = 10944,
            MoeIntermediateSize = 1408,
            NumHiddenLayers = 27,
            NumAttentionHeads = 16,
            NumKeyValueHeads = 16,
            NSharedExperts = 2,
            NRoutedExperts = 64,
            NumExpertsPerTok = 6,
            RoutedScalingFactor = 1.0,
            TopkMethod = "greedy",
            NGroup = 1,
            TopkGroup = 1,
            ScoringFunc = "softmax",
            NormTopkProb = false,
            FirstKDenseReplace = 1,
            MoeLayerFreq = 1,
            QLoraRank = null,
            KvLoraRank = 512,
            QkNopeHeadDim = 128,
            QkRopeHeadDim = 64,
            VHeadDim = 128,
            HiddenAct = "silu",
            RmsNormEps = 1e-6,
            RopeTheta = 10000,
            RopeScaling = new RopeScaling("yarn", 40, 4096, 32, 1, 0.707, 0.707),
            MaxPositionEmbeddings = 163840,
            BosTokenId = 100000,
            EosTokenId = 100001,
            PadTokenId = null,
            TieWordEmbeddings = false,
            AuxLossAlpha = 0.001,
            SeqAux = true,
            AttentionBias = false,
            InitializerRange = 0.02,
            TorchDtype = "bfloat16",
        };
        Assert.Equal(expected, c);
        Assert.Equal(192, c.QHeadDim);
        Assert.False(c.IsMoeLayer(0));
        Assert.True(c.IsMoeLayer(1));
        Assert.True(c.IsMoeLayer(26));
    }

    [Fact]
    public void AbsentKeysTakeTheDefaultsOfConfigurationDeepseekPy()
    {
        DeepSeekV2Config c = DeepSeekV2Config.Parse("{}", Source);
        Assert.Equal(1536, c.QLoraRank);
        Assert.Equal(102400, c.VocabSize);
        Assert.Equal(4096, c.HiddenSize);
        Assert.Equal(11008, c.IntermediateSize);
        Assert.Equal(1407, c.MoeIntermediateSize);
        Assert.Equal(30, c.NumHiddenLayers);
        Assert.Equal(32, c.NumAttentionHeads);
        Assert.Equal(512, c.KvLoraRank);
        Assert.Equal(64, c.QkRopeHeadDim);
        Assert.Equal(128, c.QkNopeHeadDim);
        Assert.Equal(128, c.VHeadDim);
        Assert.Null(c.NRoutedExperts);
        Assert.Null(c.NGroup);
        Assert.Null(c.TopkGroup);
        Assert.Equal(0, c.FirstKDenseReplace);
        Assert.False(c.NormTopkProb);
        Assert.Equal("softmax", c.ScoringFunc);
        Assert.Equal(0.001, c.AuxLossAlpha);
        Assert.True(c.SeqAux);
        Assert.Equal(2048, c.MaxPositionEmbeddings);
        Assert.Equal(100000, c.BosTokenId);
        Assert.Equal(100001, c.EosTokenId);
        Assert.Equal(10000, c.RopeTheta);
        Assert.Null(c.RopeScaling);
        Assert.Equal("DeepseekV2ForCausalLM", c.Architecture);
    }

    [Fact]
    public void AbsentQLoraRankMeansQueryCompression()
    {
        Assert.Equal(1536, DeepSeekV2Config.Parse(LiteWithout("q_lora_rank"), Source).QLoraRank);
    }

    [Fact]
    public void TheFirstV2UploadsArchitectureNameIsAccepted()
    {
        string json = Lite("architectures", "[\"DeepseekForCausalLM\"]").Replace("\"deepseek_v2\"", "\"deepseek\"");
        DeepSeekV2Config c = DeepSeekV2Config.Parse(json, Source);
        Assert.Equal("DeepseekForCausalLM", c.Architecture);
        Assert.Equal("deepseek", c.ModelType);
    }

    [Fact]
    public void OtherArchitecturesAreRejected()
    {
        Rejects(Lite("architectures", "[\"LlamaForCausalLM\"]"), "architectures", "LlamaForCausalLM");
    }

    [Fact]
    public void ExplicitGreadyIsRejectedNamingFileAndKey()
    {
        Rejects(Lite("topk_method", "\"gready\""), "topk_method", "gready");
    }

    [Fact]
    public void AbsentTopkMethodWithRoutedExpertsIsTheGreadyDefaultAndRejected()
    {
        Rejects(LiteWithout("topk_method"), "topk_method", "gready");
    }

    [Fact]
    public void UnknownTopkMethodIsRejected()
    {
        Rejects(Lite("topk_method", "\"noaux_tc\""), "topk_method", "noaux_tc");
    }

    [Fact]
    public void UnknownScoringFuncIsRejected()
    {
        Rejects(Lite("scoring_func", "\"sigmoid\""), "scoring_func", "sigmoid");
    }

    [Fact]
    public void GroupLimitedGreedyNeedsGroupsThatDivideTheExperts()
    {
        string json = Lite("topk_method", "\"group_limited_greedy\"").Replace("\"n_group\": 1", "\"n_group\": 3");
        Rejects(json, "n_group", "3", "64");
    }

    [Fact]
    public void GroupLimitedGreedyAsThe236BModelsConfigureItIsAccepted()
    {
        string json = Lite("topk_method", "\"group_limited_greedy\"")
            .Replace("\"n_group\": 1", "\"n_group\": 8")
            .Replace("\"topk_group\": 1", "\"topk_group\": 3")
            .Replace("\"n_routed_experts\": 64", "\"n_routed_experts\": 160");
        DeepSeekV2Config c = DeepSeekV2Config.Parse(json, Source);
        Assert.Equal(("group_limited_greedy", 8, 3, 160), (c.TopkMethod, c.NGroup, c.TopkGroup, c.NRoutedExperts));
    }

    [Fact]
    public void InvalidJsonNamesTheFile()
    {
        Rejects("{ \"hidden_size\": ", "not valid JSON");
    }

    [Fact]
    public void DuplicateKeyIsAFormatErrorNamingTheFile()
    {
        Rejects(CoderV2LiteConfig.Json.Replace("\"hidden_size\": 2048,", "\"hidden_size\": 2048, \"hidden_size\": 1024,"), "hidden_size");
    }

    [Fact]
    public void WrongValueTypeNamesTheKey()
    {
        Rejects(Lite("hidden_size", "\"2048\""), "hidden_size", "integer");
    }

    [Fact]
    public void LoadOfAMissingFileIsFileNotFound()
    {
        using var dir = new TempDirectory();
        Assert.Throws<FileNotFoundException>(() => DeepSeekV2Config.Load(dir.File("config.json")));
    }

    [Fact]
    public void ToJsonRoundTripsThroughParse()
    {
        DeepSeekV2Config lite = DeepSeekV2Config.Parse(CoderV2LiteConfig.Json, Source);
        Assert.Equal(lite, DeepSeekV2Config.Parse(lite.ToJson(), "round-trip"));

        DeepSeekV2Config big = lite with
        {
            QLoraRank = 1536,
            TopkMethod = "group_limited_greedy",
            NRoutedExperts = 160,
            NGroup = 8,
            TopkGroup = 3,
            RoutedScalingFactor = 16.0,
            PadTokenId = 100001,
            RopeScaling = null,
        };
        Assert.Equal(big, DeepSeekV2Config.Parse(big.ToJson(), "round-trip"));
    }
}
