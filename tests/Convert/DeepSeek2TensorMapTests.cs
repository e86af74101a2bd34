using Tune.Convert;
using Tune.Formats;
using Tune.Tests.Formats;

namespace Tune.Tests.Convert;

/// <summary>The tensor plan for DeepSeek-Coder-V2-Lite against gguf.md §2.5: names, ne, types, count and order.</summary>
public sealed class DeepSeek2TensorMapTests
{
    private static readonly DeepSeekV2Config Lite = DeepSeekV2Config.Parse(CoderV2LiteConfig.Json, "lite config.json");

    /// <summary>One shard, tensors in name order: the order llama.cpp's converter reads them in.</summary>
    private static IReadOnlyList<PlannedTensor> Plan(DeepSeekV2Config c, KvLayout layout = KvLayout.Split, GgmlType type = GgmlType.BF16,
        List<string>? notes = null)
    {
        var order = CheckpointLayout.Tensors(c).Select(t => t.Name).Order(StringComparer.Ordinal)
            .Select((name, i) => (name, i)).ToDictionary(p => p.name, p => p.i);
        return DeepSeek2TensorMap.Plan(c, layout, type, LlamaCppCompatibility.For(c), n => order[n], notes ?? []);
    }

    [Fact]
    public void LiteHas404TensorsInTheSplitLayoutAnd377InTheLegacyOne()
    {
        Assert.Equal(404, Plan(Lite).Count);
        Assert.Equal(377, Plan(Lite, KvLayout.Legacy).Count);
        Assert.Equal(CheckpointLayout.ParameterCount(Lite), Plan(Lite, KvLayout.Legacy).Sum(t => t.Dimensions.Aggregate(1L, (a, b) => a * b)));
    }

    [Theory]
    [InlineData("token_embd.weight", new long[] { 2048, 102400 }, GgmlType.BF16)]
    [InlineData("output.weight", new long[] { 2048, 102400 }, GgmlType.BF16)]
    [InlineData("output_norm.weight", new long[] { 2048 }, GgmlType.F32)]
    [InlineData("blk.0.attn_norm.weight", new long[] { 2048 }, GgmlType.F32)]
    [InlineData("blk.0.attn_q.weight", new long[] { 2048, 3072 }, GgmlType.BF16)]
    [InlineData("blk.0.attn_kv_a_mqa.weight", new long[] { 2048, 576 }, GgmlType.BF16)]
    [InlineData("blk.0.attn_kv_a_norm.weight", new long[] { 512 }, GgmlType.F32)]
    [InlineData("blk.0.attn_k_b.weight", new long[] { 128, 512, 16 }, GgmlType.BF16)]
    [InlineData("blk.0.attn_v_b.weight", new long[] { 512, 128, 16 }, GgmlType.BF16)]
    [InlineData("blk.0.attn_output.weight", new long[] { 2048, 2048 }, GgmlType.BF16)]
    [InlineData("blk.0.ffn_norm.weight", new long[] { 2048 }, GgmlType.F32)]
    [InlineData("blk.0.ffn_gate.weight", new long[] { 2048, 10944 }, GgmlType.BF16)]
    [InlineData("blk.0.ffn_down.weight", new long[] { 10944, 2048 }, GgmlType.BF16)]
    [InlineData("blk.26.ffn_gate_inp.weight", new long[] { 2048, 64 }, GgmlType.F32)]
    [InlineData("blk.26.ffn_gate_exps.weight", new long[] { 2048, 1408, 64 }, GgmlType.BF16)]
    [InlineData("blk.26.ffn_up_exps.weight", new long[] { 2048, 1408, 64 }, GgmlType.BF16)]
    [InlineData("blk.26.ffn_down_exps.weight", new long[] { 1408, 2048, 64 }, GgmlType.BF16)]
    [InlineData("blk.26.ffn_gate_shexp.weight", new long[] { 2048, 2816 }, GgmlType.BF16)]
    [InlineData("blk.26.ffn_down_shexp.weight", new long[] { 2816, 2048 }, GgmlType.BF16)]
    public void LiteTensorsHaveTheConvertersNamesShapesAndTypes(string name, long[] ne, GgmlType type)
    {
        PlannedTensor t = Assert.Single(Plan(Lite), t => t.Name == name);
        Assert.Equal(ne, t.Dimensions);
        Assert.Equal(type, t.Type);
    }

    [Fact]
    public void TheLegacyLayoutKeepsKvBAsOneTensorAndNeverBoth()
    {
        var legacy = Plan(Lite, KvLayout.Legacy);
        Assert.Equal([512, 4096], Assert.Single(legacy, t => t.Name == "blk.3.attn_kv_b.weight").Dimensions);
        Assert.DoesNotContain(legacy, t => t.Name.Contains("attn_k_b") || t.Name.Contains("attn_v_b"));
        Assert.DoesNotContain(Plan(Lite), t => t.Name.Contains("attn_kv_b"));
    }

    [Fact]
    public void ExpertStacksListTheExpertsInNumericOrder()
    {
        PlannedTensor down = Assert.Single(Plan(Lite), t => t.Name == "blk.5.ffn_down_exps.weight");
        Assert.Equal(TensorTransform.StackExperts, down.Transform);
        Assert.Equal(Enumerable.Range(0, 64).Select(e => $"model.layers.5.mlp.experts.{e}.down_proj.weight"), down.Sources);
    }

    [Fact]
    public void TensorsComeInTheConvertersOrder()
    {
        string[] names = Plan(Lite).Select(t => t.Name).ToArray();
        // lm_head sorts before model.*, model.layers.10 before model.layers.2, model.norm last.
        Assert.Equal(["output.weight", "token_embd.weight", "blk.0.attn_norm.weight"], names[..3]);
        Assert.Equal("output_norm.weight", names[^1]);
        Assert.True(Array.IndexOf(names, "blk.10.attn_norm.weight") < Array.IndexOf(names, "blk.2.attn_norm.weight"));
        // A layer's stacks come together, down, gate, up, after the last expert tensor (experts.9.up_proj) and before mlp.gate.
        int down = Array.IndexOf(names, "blk.1.ffn_down_exps.weight");
        Assert.Equal(["blk.1.ffn_down_exps.weight", "blk.1.ffn_gate_exps.weight", "blk.1.ffn_up_exps.weight", "blk.1.ffn_gate_inp.weight"],
            names[down..(down + 4)]);
        int kb = Array.IndexOf(names, "blk.1.attn_k_b.weight");
        Assert.Equal("blk.1.attn_v_b.weight", names[kb + 1]);
    }

    [Fact]
    public void Q8_0RowsThatAreNotWholeBlocksFallBackToF16WithANote()
    {
        var notes = new List<string>();
        var plan = Plan(ConvertModels.Base, type: GgmlType.Q8_0, notes: notes);
        Assert.All(plan.Where(t => t.Name.EndsWith("attn_k_b.weight")), t => Assert.Equal(GgmlType.F16, t.Type));
        Assert.All(plan.Where(t => t.Name.EndsWith("attn_v_b.weight")), t => Assert.Equal(GgmlType.Q8_0, t.Type));
        Assert.Contains(notes, n => n.Contains("blk.N.attn_k_b.weight") && n.Contains("f16"));
    }

    [Fact]
    public void AModelWithoutSharedExpertsGetsOneZeroSharedExpertPerMoeLayer()
    {
        var plan = Plan(ConvertModels.Quirks);
        var zeros = plan.Where(t => t.Transform == TensorTransform.Zeros).ToList();
        Assert.Equal(6, zeros.Count);
        Assert.Equal([64, 32], Assert.Single(zeros, t => t.Name == "blk.1.ffn_gate_shexp.weight").Dimensions);
        Assert.Equal([32, 64], Assert.Single(zeros, t => t.Name == "blk.2.ffn_down_shexp.weight").Dimensions);
        Assert.DoesNotContain(plan, t => t.Name == "output.weight");
    }

    [Fact]
    public void QueryRowsAreOnlyRewrittenWhenTheScalesDemandIt()
    {
        Assert.Equal(TensorTransform.Copy, Assert.Single(Plan(Lite), t => t.Name == "blk.0.attn_q.weight").Transform);
        Assert.Equal(TensorTransform.QueryRows, Assert.Single(Plan(ConvertModels.Quirks), t => t.Name == "blk.0.attn_q.weight").Transform);
    }
}
