namespace Tune.Tests.Reference;

public sealed class ReferenceTests
{
    /// <summary>The DeepSeek-Coder-V2-Lite-Base config.json of spec §1.1.</summary>
    const string LiteConfig = """
        {"architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2", "vocab_size": 102400,
         "hidden_size": 2048, "intermediate_size": 10944, "moe_intermediate_size": 1408, "num_hidden_layers": 27,
         "num_attention_heads": 16, "num_key_value_heads": 16, "n_shared_experts": 2, "n_routed_experts": 64,
         "num_experts_per_tok": 6, "routed_scaling_factor": 1.0, "topk_method": "greedy", "n_group": 1,
         "topk_group": 1, "scoring_func": "softmax", "norm_topk_prob": false, "first_k_dense_replace": 1,
         "moe_layer_freq": 1, "q_lora_rank": null, "kv_lora_rank": 512, "qk_nope_head_dim": 128,
         "qk_rope_head_dim": 64, "v_head_dim": 128, "hidden_act": "silu", "rms_norm_eps": 1e-06,
         "rope_theta": 10000,
         "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096, "beta_fast": 32,
                          "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 0.707},
         "max_position_embeddings": 163840, "bos_token_id": 100000, "eos_token_id": 100001,
         "tie_word_embeddings": false, "aux_loss_alpha": 0.001, "seq_aux": true, "attention_bias": false,
         "attention_dropout": 0.0, "pretraining_tp": 1, "initializer_range": 0.02, "torch_dtype": "bfloat16",
         "use_cache": true}
        """;

    public static TheoryData<string> ConfigNames => new(TinyConfigs.All.Keys);

    static ReferenceDeepSeekV2 Model(string configJson, int seed = 1) => Model(configJson, seed, out _);

    static ReferenceDeepSeekV2 Model(string configJson, int seed, out HashSet<string> requested)
    {
        var tensors = TinyCheckpoint.Create(configJson, seed);
        var asked = new HashSet<string>();
        requested = asked;
        return new ReferenceDeepSeekV2(configJson, name =>
        {
            asked.Add(name);
            return tensors[name].Values;
        });
    }

    static int[] Ids(int vocab, int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => random.Next(vocab)).ToArray();
    }

    static string Edit(string json, string from, string to)
    {
        Assert.Contains(from, json);
        return json.Replace(from, to);
    }

    static double MaxAbsDiff(double[][] a, double[][] b) =>
        a.Zip(b).Max(rows => rows.First.Zip(rows.Second).Max(v => Math.Abs(v.First - v.Second)));

    // ---------------------------------------------------------------- YaRN, mscale, softmax scale (spec §2.3, §2.4)

    [Fact]
    public void YarnCorrectionRangeOfLiteIsTenToTwentyThree()
    {
        Assert.Equal((10, 23), ReferenceDeepSeekV2.YarnCorrectionRange(64, 10000, 4096, 32, 1));
    }

    [Fact]
    public void YarnInvFreqOfLiteKeepsInterpolatesAndBlends()
    {
        var f = ReferenceDeepSeekV2.YarnInvFreq(64, 10000, 40, 4096, 32, 1);

        Assert.Equal(32, f.Length);
        Assert.Equal(1.0, f[0], 1e-15);
        Assert.Equal(Math.Pow(10000, -20.0 / 64), f[10], 1e-15);         // ramp 0: the original frequency
        Assert.Equal(Math.Pow(10000, -46.0 / 64) / 40, f[23], 1e-15);    // ramp 1: interpolated by 1/40
        Assert.Equal(Math.Pow(10000, -62.0 / 64) / 40, f[31], 1e-15);
        double extra15 = Math.Pow(10000, -30.0 / 64), ramp15 = (15 - 10) / 13.0;
        Assert.Equal(extra15 / 40 * ramp15 + extra15 * (1 - ramp15), f[15], 1e-15);
    }

    [Fact]
    public void YarnMscaleFollowsTheLogFormula()
    {
        Assert.Equal(1.2608038, ReferenceDeepSeekV2.YarnMscale(40, 0.707), 1e-7);
        Assert.Equal(0.1 * 0.707 * Math.Log(40) + 1, ReferenceDeepSeekV2.YarnMscale(40, 0.707), 1e-15);
        Assert.Equal(1.0, ReferenceDeepSeekV2.YarnMscale(1.0, 0.707));
        Assert.Equal(1.0, ReferenceDeepSeekV2.YarnMscale(40, 0.0));
    }

    [Fact]
    public void SoftmaxScaleOfLiteIncludesTheSquaredMscale()
    {
        var lite = ReferenceConfig.Parse(LiteConfig);

        Assert.Equal(0.1147214, ReferenceDeepSeekV2.SoftmaxScale(lite), 1e-7);
        Assert.Equal(1 / Math.Sqrt(192), ReferenceDeepSeekV2.SoftmaxScale(lite with { RopeScaling = null }), 1e-15);
        Assert.Equal(1 / Math.Sqrt(192), ReferenceDeepSeekV2.SoftmaxScale(
            lite with { RopeScaling = lite.RopeScaling! with { MscaleAllDim = 0 } }), 1e-15);
    }

    // ---------------------------------------------------------------- RoPE pairing (spec §2.4)

    [Fact]
    public void RopeRotatesAdjacentPairs()
    {
        double[] x = [1, 2, 3, 4];
        double[] invFreq = [Math.PI / 2, Math.PI];

        var y = ReferenceDeepSeekV2.RotateAdjacentPairs(x, 1, invFreq, 1.0);
        double[] expected = [-2, 1, -3, -4];   // (1,2) by 90°, (3,4) by 180°
        for (int i = 0; i < 4; i++)
            Assert.Equal(expected[i], y[i], 1e-15);

        var scaled = ReferenceDeepSeekV2.RotateAdjacentPairs(x, 1, invFreq, 1.5);
        for (int i = 0; i < 4; i++)
            Assert.Equal(1.5 * expected[i], scaled[i], 1e-15);

        Assert.Equal(x, ReferenceDeepSeekV2.RotateAdjacentPairs(x, 0, invFreq, 1.0));
    }

    [Fact]
    public void RopeEqualsTheRemoteCodesPermuteAndRotateHalf()
    {
        const int dim = 8;
        var random = new Random(7);
        double[] q = Enumerable.Range(0, dim).Select(_ => random.NextDouble() - 0.5).ToArray();
        double[] k = Enumerable.Range(0, dim).Select(_ => random.NextDouble() - 0.5).ToArray();
        var invFreq = ReferenceDeepSeekV2.YarnInvFreq(dim, 10000, 40, 4096, 32, 1);

        // modeling_deepseek.py: view (d/2, 2), swap the axes, flatten, then x·cos + rotate_half(x)·sin with cos/sin = cat(freqs, freqs).
        double[] Remote(double[] x, int pos)
        {
            var permuted = Enumerable.Range(0, dim).Select(i => i < dim / 2 ? x[2 * i] : x[2 * (i - dim / 2) + 1]).ToArray();
            var rotated = Enumerable.Range(0, dim).Select(i => i < dim / 2 ? -permuted[i + dim / 2] : permuted[i - dim / 2]).ToArray();
            return Enumerable.Range(0, dim).Select(i =>
                permuted[i] * Math.Cos(pos * invFreq[i % (dim / 2)]) + rotated[i] * Math.Sin(pos * invFreq[i % (dim / 2)])).ToArray();
        }

        foreach (var (qPos, kPos) in new[] { (5, 2), (3, 3), (7, 0) })
        {
            var qOurs = ReferenceDeepSeekV2.RotateAdjacentPairs(q, qPos, invFreq, 1.0);
            var kOurs = ReferenceDeepSeekV2.RotateAdjacentPairs(k, kPos, invFreq, 1.0);
            var qRemote = Remote(q, qPos);
            // The remote output is in the permuted order: [even pair members..., odd pair members...].
            for (int i = 0; i < dim / 2; i++)
            {
                Assert.Equal(qRemote[i], qOurs[2 * i], 1e-15);
                Assert.Equal(qRemote[i + dim / 2], qOurs[2 * i + 1], 1e-15);
            }
            double dotOurs = qOurs.Zip(kOurs).Sum(p => p.First * p.Second);
            double dotRemote = qRemote.Zip(Remote(k, kPos)).Sum(p => p.First * p.Second);
            Assert.Equal(dotRemote, dotOurs, 1e-15);
        }
    }

    // ---------------------------------------------------------------- router (spec §2.5)

    [Fact]
    public void GreedyRoutingPicksTheTopScoresAndScalesThem()
    {
        double[] scores = [0.10, 0.40, 0.05, 0.30, 0.15];

        var (experts, weights) = ReferenceDeepSeekV2.Route(scores, 2, "greedy", 0, 0, false, 2.0);

        Assert.Equal([1, 3], experts);
        Assert.Equal(0.8, weights[0], 1e-15);
        Assert.Equal(0.6, weights[1], 1e-15);
    }

    [Fact]
    public void GroupLimitedRoutingKeepsOnlyTheBestGroupsByMax()
    {
        // Groups {0,1}, {2,3}, {4,5}. Group 1 has the larger sum but group 0 the larger max, so with topk_group 1
        // only group 0 survives, and the global runner-up (expert 2) is not chosen.
        double[] scores = [0.30, 0.01, 0.28, 0.27, 0.08, 0.06];

        var (global, _) = ReferenceDeepSeekV2.Route(scores, 2, "greedy", 0, 0, false, 1.0);
        var (limited, weights) = ReferenceDeepSeekV2.Route(scores, 2, "group_limited_greedy", 3, 1, false, 1.0);

        Assert.Equal([0, 2], global);
        Assert.Equal([0, 1], limited);
        Assert.Equal([0.30, 0.01], weights);

        var (two, _) = ReferenceDeepSeekV2.Route(scores, 3, "group_limited_greedy", 3, 2, false, 1.0);
        Assert.Equal([0, 2, 3], two);
        var (masked, maskedWeights) = ReferenceDeepSeekV2.Route(scores, 5, "group_limited_greedy", 3, 2, false, 1.0);
        Assert.Equal([0, 2, 3, 1], masked[..4]);
        Assert.Contains(masked[4], new[] { 4, 5 });
        Assert.Equal(0.0, maskedWeights[4]);   // experts of dropped groups score 0, not their softmax value
    }

    [Fact]
    public void NormTopkProbNormalisesAndIgnoresTheScalingFactor()
    {
        double[] scores = [0.10, 0.40, 0.05, 0.30, 0.15];

        var (_, normalised) = ReferenceDeepSeekV2.Route(scores, 2, "greedy", 0, 0, true, 16.0);
        Assert.Equal(0.4 / (0.7 + 1e-20), normalised[0], 1e-15);
        Assert.Equal(0.3 / (0.7 + 1e-20), normalised[1], 1e-15);

        // top_k = 1 skips normalisation even with norm_topk_prob, and scales instead (spec §2.5 step 3).
        var (single, scaled) = ReferenceDeepSeekV2.Route(scores, 1, "greedy", 0, 0, true, 16.0);
        Assert.Equal([1], single);
        Assert.Equal(6.4, scaled[0], 1e-14);
    }

    // ---------------------------------------------------------------- aux loss (spec §2.6)

    [Fact]
    public void SeqAuxLossOnCraftedRouting()
    {
        // E=4, k=1, T=2, both tokens pick expert 0: f_0 = 2/(2·1/4) = 4, P_0 = 0.55, so α·2.2.
        double[][] scores = [[0.7, 0.1, 0.1, 0.1], [0.4, 0.3, 0.2, 0.1]];
        Assert.Equal(0.001 * 2.2, ReferenceDeepSeekV2.SeqAuxLoss(scores, [[0], [0]], 4, 0.001), 1e-15);

        // Uniform scores with every expert picked equally often give exactly α.
        double[][] uniform = [[0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25]];
        Assert.Equal(0.001, ReferenceDeepSeekV2.SeqAuxLoss(uniform, [[0, 1], [2, 3]], 4, 0.001), 1e-15);
    }

    [Fact]
    public void AuxLossSumsOverMoeLayersOnly()
    {
        // Picking all E experts makes f_e = 1 for every e, so each MoE layer adds α·Σ_e P_e = α whatever the weights.
        // YarnUnequalMscale has MoE on layers 0 and 2 and a dense layer 1.
        string config = Edit(Edit(TinyConfigs.YarnUnequalMscale, "\"num_experts_per_tok\": 2", "\"num_experts_per_tok\": 4"),
            "\"first_k_dense_replace\": 0", "\"aux_loss_alpha\": 0.003, \"first_k_dense_replace\": 0");

        Assert.Equal(2 * 0.003, Model(config).AuxLoss([3, 1, 4, 1, 5]), 1e-15);
    }

    // ---------------------------------------------------------------- the forward pass

    [Theory]
    [MemberData(nameof(ConfigNames))]
    public void AbsorbedEqualsNaive(string configName)
    {
        string config = TinyConfigs.All[configName];
        var model = Model(config);
        var ids = Ids(model.Config.VocabSize, 8, seed: 3);

        var naive = model.Forward(ids);
        var absorbed = model.ForwardAbsorbed(ids);

        Assert.Equal(ids.Length, naive.Length);
        Assert.All(naive, row => Assert.Equal(model.Config.VocabSize, row.Length));
        Assert.True(naive.SelectMany(r => r).Max(Math.Abs) > 0.1, "logits are not degenerate");
        Assert.True(MaxAbsDiff(naive, absorbed) < 1e-12, $"max |naive - absorbed| = {MaxAbsDiff(naive, absorbed):E3}");
    }

    [Theory]
    [MemberData(nameof(ConfigNames))]
    public void LogitsAtPositionTIgnoreLaterTokens(string configName)
    {
        string config = TinyConfigs.All[configName];
        var model = Model(config);
        var ids = Ids(model.Config.VocabSize, 8, seed: 5);
        var changed = (int[])ids.Clone();
        for (int t = 5; t < changed.Length; t++)
            changed[t] = (changed[t] + 1 + t) % model.Config.VocabSize;

        var a = model.Forward(ids);
        var b = model.Forward(changed);

        Assert.Equal(0.0, MaxAbsDiff(a[..5], b[..5]));
        Assert.True(MaxAbsDiff(a[5..], b[5..]) > 1e-6, "later tokens must change later logits");
    }

    [Theory]
    [MemberData(nameof(ConfigNames))]
    public void ReadsExactlyTheSpecsTensors(string configName)
    {
        string config = TinyConfigs.All[configName];
        var model = Model(config, 1, out var requested);
        model.Forward(Ids(model.Config.VocabSize, 8, seed: 2));

        // Routed experts are read only when picked, so compare them as "a subset"; everything else exactly.
        var expected = TinyCheckpoint.Shapes(model.Config).Select(t => t.Name).ToHashSet();
        Assert.Subset(expected, requested);
        Assert.Equal(expected.Where(n => !n.Contains(".experts.")).Order(), requested.Where(n => !n.Contains(".experts.")).Order());
    }

    [Fact]
    public void UnequalMscalesScaleTheRopeParts()
    {
        // Same weights, rope_scaling mscale 1.0 vs 0.707 (mscale_all_dim 0.707): cos/sin × 1.0857 vs × 1.
        string equal = Edit(TinyConfigs.YarnUnequalMscale, "\"mscale\": 1.0", "\"mscale\": 0.707");
        var ids = Ids(71, 6, seed: 9);

        var unequalLogits = Model(TinyConfigs.YarnUnequalMscale).Forward(ids);
        var equalLogits = Model(equal).Forward(ids);

        Assert.True(MaxAbsDiff(unequalLogits, equalLogits) > 1e-6);
        Assert.Equal(1.0857, ReferenceDeepSeekV2.YarnMscale(40, 1.0) / ReferenceDeepSeekV2.YarnMscale(40, 0.707), 1e-4);
    }

    // ---------------------------------------------------------------- config (spec §1.1)

    [Fact]
    public void AbsentKeysTakeTheConfigurationDeepseekDefaults()
    {
        var c = ReferenceConfig.Parse("{}");

        Assert.Equal((102400, 4096, 11008, 1407, 30, 32), (c.VocabSize, c.HiddenSize, c.IntermediateSize,
            c.MoeIntermediateSize, c.NumHiddenLayers, c.NumAttentionHeads));
        Assert.Equal((1536, 512, 64, 128, 128), (c.QLoraRank, c.KvLoraRank, c.QkRopeHeadDim, c.VHeadDim, c.QkNopeHeadDim));
        Assert.Equal(("gready", 0, 1, false, 1.0), (c.TopkMethod, c.FirstKDenseReplace, c.MoeLayerFreq, c.NormTopkProb,
            c.RoutedScalingFactor));
        Assert.Null(c.NRoutedExperts);
        Assert.Null(c.NSharedExperts);
        Assert.Null(c.RopeScaling);
        Assert.Equal((1e-6, 10000.0, false), (c.RmsNormEps, c.RopeTheta, c.TieWordEmbeddings));
    }

    [Fact]
    public void LiteConfigParsesAsTheSpecsTable()
    {
        var c = ReferenceConfig.Parse(LiteConfig);

        Assert.Null(c.QLoraRank);
        Assert.Equal(192, c.QHeadDim);
        Assert.False(c.IsMoeLayer(0));
        Assert.True(c.IsMoeLayer(1));
        Assert.True(c.IsMoeLayer(26));
        Assert.Equal(new ReferenceRopeScaling("yarn", 40, 4096, 32, 1, 0.707, 0.707), c.RopeScaling);
    }

    [Fact]
    public void MisspeltDefaultTopkMethodIsRejected()
    {
        string config = Edit(TinyConfigs.PlainRope, "\"topk_method\": \"greedy\",", "");

        var error = Assert.Throws<NotSupportedException>(() => Model(config));
        Assert.Contains("gready", error.Message);
    }
}
