using System.Text.RegularExpressions;
using Tune.Formats;

namespace Tune.Convert;

/// <summary>One row of the HF → GGUF table: {i} is the layer, {e} the routed expert.</summary>
public sealed record TensorMapping(string Hf, string Gguf, TensorTransform Transform, KvLayout? OnlyIn = null);

/// <summary>A tensor of the output file: GGUF name, ne, type, and how its bytes are made from which HF tensors.</summary>
public sealed record PlannedTensor(string Name, long[] Dimensions, GgmlType Type, TensorTransform Transform, IReadOnlyList<string> Sources)
{
    public long ByteLength => Type.ByteCount(Dimensions);
}

/// <summary>
/// The Hugging Face DeepSeek-V2 → GGUF <c>deepseek2</c> tensor mapping (gguf.md §2.5), as one table, and the plan it
/// gives for a config: names, ggml dimensions, types and the order llama.cpp's converter writes them in.
/// </summary>
public static class DeepSeek2TensorMap
{
    public static readonly IReadOnlyList<TensorMapping> Table =
    [
        new("model.embed_tokens.weight", "token_embd.weight", TensorTransform.Copy),
        new("model.norm.weight", "output_norm.weight", TensorTransform.Copy),
        new("lm_head.weight", "output.weight", TensorTransform.Copy),
        new("model.layers.{i}.input_layernorm.weight", "blk.{i}.attn_norm.weight", TensorTransform.Copy),
        new("model.layers.{i}.self_attn.q_proj.weight", "blk.{i}.attn_q.weight", TensorTransform.QueryRows),
        new("model.layers.{i}.self_attn.q_a_proj.weight", "blk.{i}.attn_q_a.weight", TensorTransform.Copy),
        new("model.layers.{i}.self_attn.q_a_layernorm.weight", "blk.{i}.attn_q_a_norm.weight", TensorTransform.Copy),
        new("model.layers.{i}.self_attn.q_b_proj.weight", "blk.{i}.attn_q_b.weight", TensorTransform.QueryRows),
        new("model.layers.{i}.self_attn.kv_a_proj_with_mqa.weight", "blk.{i}.attn_kv_a_mqa.weight", TensorTransform.Copy),
        new("model.layers.{i}.self_attn.kv_a_layernorm.weight", "blk.{i}.attn_kv_a_norm.weight", TensorTransform.Copy),
        new("model.layers.{i}.self_attn.kv_b_proj.weight", "blk.{i}.attn_k_b.weight", TensorTransform.KeyHalfTransposed, KvLayout.Split),
        new("model.layers.{i}.self_attn.kv_b_proj.weight", "blk.{i}.attn_v_b.weight", TensorTransform.ValueHalf, KvLayout.Split),
        new("model.layers.{i}.self_attn.kv_b_proj.weight", "blk.{i}.attn_kv_b.weight", TensorTransform.Copy, KvLayout.Legacy),
        new("model.layers.{i}.self_attn.o_proj.weight", "blk.{i}.attn_output.weight", TensorTransform.Copy),
        new("model.layers.{i}.post_attention_layernorm.weight", "blk.{i}.ffn_norm.weight", TensorTransform.Copy),
        new("model.layers.{i}.mlp.gate_proj.weight", "blk.{i}.ffn_gate.weight", TensorTransform.Copy),
        new("model.layers.{i}.mlp.up_proj.weight", "blk.{i}.ffn_up.weight", TensorTransform.Copy),
        new("model.layers.{i}.mlp.down_proj.weight", "blk.{i}.ffn_down.weight", TensorTransform.Copy),
        new("model.layers.{i}.mlp.gate.weight", "blk.{i}.ffn_gate_inp.weight", TensorTransform.Copy),
        // llama.cpp's converter emits a layer's three expert stacks together, down first.
        new("model.layers.{i}.mlp.experts.{e}.down_proj.weight", "blk.{i}.ffn_down_exps.weight", TensorTransform.StackExperts),
        new("model.layers.{i}.mlp.experts.{e}.gate_proj.weight", "blk.{i}.ffn_gate_exps.weight", TensorTransform.StackExperts),
        new("model.layers.{i}.mlp.experts.{e}.up_proj.weight", "blk.{i}.ffn_up_exps.weight", TensorTransform.StackExperts),
        new("model.layers.{i}.mlp.shared_experts.down_proj.weight", "blk.{i}.ffn_down_shexp.weight", TensorTransform.Copy),
        new("model.layers.{i}.mlp.shared_experts.gate_proj.weight", "blk.{i}.ffn_gate_shexp.weight", TensorTransform.Copy),
        new("model.layers.{i}.mlp.shared_experts.up_proj.weight", "blk.{i}.ffn_up_shexp.weight", TensorTransform.Copy),
    ];

    private static readonly Regex[] Patterns = Table.Select(m => new Regex(
        "^" + Regex.Escape(m.Hf).Replace(@"\{i}", @"(?<i>\d+)").Replace(@"\{e}", @"(?<e>\d+)") + "$", RegexOptions.CultureInvariant)).ToArray();

    /// <summary>
    /// The rows of the table that <paramref name="hfName"/> matches in <paramref name="layout"/> (two for kv_b_proj in the
    /// split layout), each with its GGUF name and the layer and expert it names (-1 where the row has none).
    /// </summary>
    public static IEnumerable<(TensorMapping Mapping, string Gguf, int Layer, int Expert)> Match(string hfName, KvLayout layout)
    {
        for (int entry = 0; entry < Table.Count; entry++)
        {
            if (Table[entry].OnlyIn is { } only && only != layout) continue;
            Match match = Patterns[entry].Match(hfName);
            if (!match.Success) continue;
            int layer = match.Groups["i"].Success ? int.Parse(match.Groups["i"].Value) : -1;
            int expert = match.Groups["e"].Success ? int.Parse(match.Groups["e"].Value) : -1;
            yield return (Table[entry], Table[entry].Gguf.Replace("{i}", layer.ToString()), layer, expert);
        }
    }

    /// <summary>Weights that stay F32 in every output type: 1-D tensors, norms and the router (gguf.md §2.5).</summary>
    public static bool KeepsF32(string ggufName, int dimensions) =>
        dimensions <= 1 || ggufName.EndsWith("_norm.weight", StringComparison.Ordinal) || ggufName.EndsWith(".ffn_gate_inp.weight", StringComparison.Ordinal);

    /// <summary>
    /// The output tensors for <paramref name="c"/>, in the order llama.cpp's converter writes them: by the position of
    /// their last source in its reading order (<paramref name="readOrder"/>: shard files by name, tensors by name), a
    /// layer's expert stacks when its last expert tensor is read. Type-choice remarks go to <paramref name="notes"/>.
    /// </summary>
    public static IReadOnlyList<PlannedTensor> Plan(DeepSeekV2Config c, KvLayout layout, GgmlType type, LlamaCppCompatibility compat,
        Func<string, int> readOrder, ICollection<string> notes)
    {
        var outputs = new Dictionary<string, (int Entry, int Layer, List<(int Expert, TensorSpec Spec)> Sources)>(StringComparer.Ordinal);
        foreach (TensorSpec spec in CheckpointLayout.Tensors(c))
        {
            bool mapped = false;
            for (int entry = 0; entry < Table.Count; entry++)
            {
                if (Table[entry].OnlyIn is { } only && only != layout) continue;
                Match match = Patterns[entry].Match(spec.Name);
                if (!match.Success) continue;
                mapped = true;
                int layer = match.Groups["i"].Success ? int.Parse(match.Groups["i"].Value) : -1;
                string name = Table[entry].Gguf.Replace("{i}", layer.ToString());
                if (!outputs.TryGetValue(name, out var output)) outputs[name] = output = (entry, layer, []);
                output.Sources.Add((match.Groups["e"].Success ? int.Parse(match.Groups["e"].Value) : 0, spec));
            }
            if (!mapped) throw new InvalidOperationException($"no GGUF mapping for HF tensor \"{spec.Name}\"");
        }

        var stackPosition = outputs.Values.Where(o => Table[o.Entry].Transform == TensorTransform.StackExperts)
            .GroupBy(o => o.Layer).ToDictionary(g => g.Key, g => g.SelectMany(o => o.Sources).Max(s => readOrder(s.Spec.Name)));
        var planned = new List<(int Position, int Entry, PlannedTensor Tensor)>();
        var fallbacks = new SortedDictionary<string, long>(StringComparer.Ordinal);
        PlannedTensor Typed(string name, long[] ne, TensorTransform transform, IReadOnlyList<string> sources)
        {
            GgmlType chosen = KeepsF32(name, ne.Length) ? GgmlType.F32 : type;
            // gguf-py cannot quantise rows that are not whole blocks and falls back to F16; so do we.
            if (ne[0] % chosen.BlockSize() != 0)
            {
                fallbacks[Regex.Replace(name, @"^blk\.\d+\.", "blk.N.")] = ne[0];
                chosen = GgmlType.F16;
            }
            return new PlannedTensor(name, ne, chosen, transform, sources);
        }

        foreach (var (name, (entry, layer, sources)) in outputs)
        {
            TensorTransform transform = Table[entry].Transform;
            if (transform == TensorTransform.QueryRows && !compat.ScalesQuery) transform = TensorTransform.Copy;
            long[] hf = sources[0].Spec.Shape;
            long[] ne = transform switch
            {
                TensorTransform.StackExperts => [hf[1], hf[0], sources.Count],
                TensorTransform.KeyHalfTransposed => [c.QkNopeHeadDim, c.KvLoraRank, c.NumAttentionHeads],
                TensorTransform.ValueHalf => [c.KvLoraRank, c.VHeadDim, c.NumAttentionHeads],
                _ => hf.Reverse().ToArray(),
            };
            string[] names = sources.OrderBy(s => s.Expert).Select(s => s.Spec.Name).ToArray();
            int position = transform == TensorTransform.StackExperts ? stackPosition[layer] : names.Max(readOrder);
            planned.Add((position, entry, Typed(name, ne, transform, names)));
        }

        if (compat.ZeroSharedExpert)
        {
            long width = c.MoeIntermediateSize, hidden = c.HiddenSize;
            for (int layer = 0; layer < c.NumHiddenLayers; layer++)
            {
                if (!c.IsMoeLayer(layer)) continue;
                int position = readOrder($"model.layers.{layer}.mlp.gate.weight");
                for (int entry = 0; entry < Table.Count; entry++)
                {
                    if (!Table[entry].Hf.Contains(".shared_experts.", StringComparison.Ordinal)) continue;
                    long[] ne = Table[entry].Hf.Contains("down_proj", StringComparison.Ordinal) ? [width, hidden] : [hidden, width];
                    planned.Add((position, entry, Typed(Table[entry].Gguf.Replace("{i}", layer.ToString()), ne, TensorTransform.Zeros, [])));
                }
            }
        }

        foreach (var (name, row) in fallbacks)
            notes.Add($"{name}: rows of {row} values are not whole {type.Name()} blocks of {type.BlockSize()}; written as f16, as llama.cpp's converter does");
        return planned.OrderBy(p => p.Position).ThenBy(p => p.Entry).ThenBy(p => p.Tensor.Name, StringComparer.Ordinal)
            .Select(p => p.Tensor).ToArray();
    }
}
