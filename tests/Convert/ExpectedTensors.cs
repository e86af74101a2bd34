using System.Text.RegularExpressions;
using Tune.Formats;

namespace Tune.Tests.Convert;

/// <summary>
/// What each GGUF tensor must hold, worked out from the HF checkpoint by the formulas of gguf.md §2.5, independently
/// of the converter's table: renames, experts concatenated in order, and the kv_b split element by element.
/// </summary>
internal static class ExpectedTensors
{
    private static readonly Dictionary<string, string> LayerRenames = new()
    {
        ["attn_norm"] = "input_layernorm", ["attn_q"] = "self_attn.q_proj", ["attn_q_a"] = "self_attn.q_a_proj",
        ["attn_q_a_norm"] = "self_attn.q_a_layernorm", ["attn_q_b"] = "self_attn.q_b_proj",
        ["attn_kv_a_mqa"] = "self_attn.kv_a_proj_with_mqa", ["attn_kv_a_norm"] = "self_attn.kv_a_layernorm",
        ["attn_kv_b"] = "self_attn.kv_b_proj", ["attn_output"] = "self_attn.o_proj", ["ffn_norm"] = "post_attention_layernorm",
        ["ffn_gate"] = "mlp.gate_proj", ["ffn_up"] = "mlp.up_proj", ["ffn_down"] = "mlp.down_proj", ["ffn_gate_inp"] = "mlp.gate",
        ["ffn_gate_shexp"] = "mlp.shared_experts.gate_proj", ["ffn_up_shexp"] = "mlp.shared_experts.up_proj",
        ["ffn_down_shexp"] = "mlp.shared_experts.down_proj",
    };

    public static float[] For(CheckpointDirectory checkpoint, string ggufName)
    {
        DeepSeekV2Config c = checkpoint.Config;
        switch (ggufName)
        {
            case "token_embd.weight": return checkpoint.ReadFloat32("model.embed_tokens.weight");
            case "output.weight": return checkpoint.ReadFloat32("lm_head.weight");
            case "output_norm.weight": return checkpoint.ReadFloat32("model.norm.weight");
        }
        Match m = Regex.Match(ggufName, @"^blk\.(\d+)\.(\w+)\.weight$");
        Assert.True(m.Success, ggufName);
        string p = $"model.layers.{m.Groups[1].Value}.";
        string kind = m.Groups[2].Value;
        int heads = c.NumAttentionHeads, nope = c.QkNopeHeadDim, value = c.VHeadDim, rank = c.KvLoraRank;
        switch (kind)
        {
            case "ffn_gate_exps" or "ffn_up_exps" or "ffn_down_exps":
                string proj = kind.Split('_')[1] + "_proj";
                return Enumerable.Range(0, c.NRoutedExperts!.Value).SelectMany(e => checkpoint.ReadFloat32($"{p}mlp.experts.{e}.{proj}.weight")).ToArray();
            case "attn_k_b":
            {
                float[] kvB = checkpoint.ReadFloat32(p + "self_attn.kv_b_proj.weight");
                var kB = new float[heads * rank * nope];
                for (int h = 0; h < heads; h++)
                    for (int r = 0; r < rank; r++)
                        for (int j = 0; j < nope; j++)
                            kB[(h * rank + r) * nope + j] = kvB[(h * (nope + value) + j) * rank + r];
                return kB;
            }
            case "attn_v_b":
            {
                float[] kvB = checkpoint.ReadFloat32(p + "self_attn.kv_b_proj.weight");
                var vB = new float[heads * value * rank];
                for (int h = 0; h < heads; h++)
                    for (int j = 0; j < value; j++)
                        for (int r = 0; r < rank; r++)
                            vB[(h * value + j) * rank + r] = kvB[(h * (nope + value) + nope + j) * rank + r];
                return vB;
            }
            default:
                return checkpoint.Contains(p + LayerRenames[kind] + ".weight")
                    ? checkpoint.ReadFloat32(p + LayerRenames[kind] + ".weight")
                    : throw new KeyNotFoundException($"{ggufName}: no HF tensor {p + LayerRenames[kind]}.weight");
        }
    }
}
