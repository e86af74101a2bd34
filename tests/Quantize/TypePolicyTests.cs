using Tune.Formats;
using Tune.Quantize;

namespace Tune.Tests.Quantize;

/// <summary>
/// The plan of docs spec §5.6 for DeepSeek-Coder-V2-Lite (27 layers, split layout), from names and shapes alone:
/// the fast check that runs without llama.cpp (the oracle comparison is <see cref="LlamaQuantizeAgreementTests"/>).
/// </summary>
public sealed class TypePolicyTests
{
    private static readonly int[] MoreBitsLayers = [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26];

    [Fact]
    public void UseMoreBitsOf27LayersIsTheSpecSet() =>
        Assert.Equal(MoreBitsLayers, Enumerable.Range(0, 27).Where(i => TypePolicy.UseMoreBits(i, 27)));

    [Theory]
    [InlineData("q4_k_m")]
    [InlineData("q4_k_s")]
    public void LitePlanMatchesTheSpec(string mixName)
    {
        QuantizationMix mix = QuantizationMix.Parse(mixName);
        bool m = mix == QuantizationMix.Q4_K_M;
        var types = TypePolicy.Choose(LiteTensors(), mix, 27, 64).ToDictionary(t => t.Name, t => t.Type);
        Assert.Equal(GgmlType.Q6_K, types["output.weight"]);
        Assert.Equal(GgmlType.Q4_K, types["token_embd.weight"]);
        Assert.Equal(GgmlType.F32, types["output_norm.weight"]);
        Assert.Equal(GgmlType.F32, types["blk.3.ffn_gate_inp.weight"]);
        Assert.Equal(GgmlType.Q5_0, types["blk.4.attn_k_b.weight"]);
        Assert.Equal(GgmlType.Q4_K, types["blk.4.attn_v_b.weight"]);
        Assert.Equal(m ? GgmlType.Q8_0 : GgmlType.Q5_1, types["blk.0.ffn_down.weight"]);
        for (int i = 1; i < 27; i++)
        {
            bool more = m ? MoreBitsLayers.Contains(i) : i < 27 / 8;
            Assert.Equal(more ? (m ? GgmlType.Q8_0 : GgmlType.Q5_1) : GgmlType.Q5_0, types[$"blk.{i}.ffn_down_exps.weight"]);
            Assert.Equal(more ? (m ? GgmlType.Q6_K : GgmlType.Q5_K) : GgmlType.Q4_K, types[$"blk.{i}.ffn_down_shexp.weight"]);
            Assert.Equal(GgmlType.Q4_K, types[$"blk.{i}.ffn_up_exps.weight"]);
        }
    }

    [Theory]
    [InlineData(GgmlType.Q4_K, 1408, GgmlType.Q5_0)]
    [InlineData(GgmlType.Q5_K, 10944, GgmlType.Q5_1)]
    [InlineData(GgmlType.Q6_K, 128, GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_K, 2816, GgmlType.Q4_K)]
    [InlineData(GgmlType.Q4_K, 80, GgmlType.F16)]
    [InlineData(GgmlType.Q8_0, 48, GgmlType.F16)]
    public void FallbackForRowsThatAreNotWholeBlocks(GgmlType chosen, long row, GgmlType expected) =>
        Assert.Equal(expected, TypePolicy.Fallback(chosen, row));

    private static List<GgufTensorInfo> LiteTensors()
    {
        var t = new List<GgufTensorInfo>();
        // As `tune convert --type f16` writes them: norms and routers f32, the rest f16.
        void Add(string name, params long[] ne) => t.Add(new GgufTensorInfo(name, ne.Length == 1 || name.Contains("gate_inp") ? GgmlType.F32 : GgmlType.F16, ne, 0, 0));
        Add("output.weight", 2048, 102400);
        Add("output_norm.weight", 2048);
        Add("token_embd.weight", 2048, 102400);
        for (int i = 0; i < 27; i++)
        {
            string b = $"blk.{i}.";
            Add(b + "attn_k_b.weight", 128, 512, 16);
            Add(b + "attn_kv_a_mqa.weight", 2048, 576);
            Add(b + "attn_kv_a_norm.weight", 512);
            Add(b + "attn_norm.weight", 2048);
            Add(b + "attn_output.weight", 2048, 2048);
            Add(b + "attn_q.weight", 2048, 3072);
            Add(b + "attn_v_b.weight", 512, 128, 16);
            Add(b + "ffn_norm.weight", 2048);
            if (i == 0)
            {
                Add(b + "ffn_down.weight", 10944, 2048);
                Add(b + "ffn_gate.weight", 2048, 10944);
                Add(b + "ffn_up.weight", 2048, 10944);
                continue;
            }
            Add(b + "ffn_down_exps.weight", 1408, 2048, 64);
            Add(b + "ffn_down_shexp.weight", 2816, 2048);
            Add(b + "ffn_gate_exps.weight", 2048, 1408, 64);
            Add(b + "ffn_gate_inp.weight", 2048, 64);
            Add(b + "ffn_gate_shexp.weight", 2048, 2816);
            Add(b + "ffn_up_exps.weight", 2048, 1408, 64);
            Add(b + "ffn_up_shexp.weight", 2048, 2816);
        }
        return t;
    }
}
