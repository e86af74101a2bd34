using System.Text.RegularExpressions;
using Tune.Convert;
using Tune.Formats;
using Tune.Model;
using static TorchSharp.torch;

namespace Tune.Serve.Gguf;

/// <summary>
/// The graph's weights read from a memory-mapped deepseek2 GGUF file. Names are resolved through the converter's one
/// HF → GGUF table (<see cref="DeepSeek2TensorMap"/>), inverted: a routed expert's projection is its slice of the
/// stacked ffn_*_exps tensor. Block-quantised projections and embeddings stay in the mapping as
/// <see cref="QuantizedMatrix"/>; float tensors alias the mapping (or convert to the runtime's dtype). Only kv_b_proj
/// is dense (rebuilt from attn_k_b and attn_v_b in the split layout): the training form of attention multiplies by it
/// whole; the absorbed form uses the quantised halves (<see cref="LoadAbsorbedKv"/>).
/// </summary>
public sealed unsafe class GgufWeights : CheckpointWeights
{
    private static readonly (TensorMapping Mapping, Regex Pattern)[] Mappings = DeepSeek2TensorMap.Table
        .Select(m => (m, new Regex("^" + Regex.Escape(m.Hf).Replace(@"\{i}", @"(?<i>\d+)").Replace(@"\{e}", @"(?<e>\d+)") + "$",
            RegexOptions.CultureInvariant)))
        .ToArray();

    private readonly GgufFile _file;
    private readonly KvLayout _layout;
    private readonly int _threads;

    public GgufWeights(GgufFile file, TorchRuntime runtime, int threads)
    {
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threads), $"at least one thread, got {threads}");
        _file = file;
        _layout = GgufConfig.Layout(file);
        _threads = threads;
        Config = GgufConfig.Read(file);
        Runtime = runtime;
    }

    public override DeepSeekV2Config Config { get; }
    public override TorchRuntime Runtime { get; }

    public override bool Contains(string name) =>
        Resolve(name) is { } r && (r.Transform == TensorTransform.KeyHalfTransposed || _file.TryGetTensor(r.Gguf, out _));

    public override Tensor Load(string name, params long[] expectedShape)
    {
        Resolved r = Resolve(name) ?? throw new KeyNotFoundException($"{_file.Path}: no GGUF tensor holds HF tensor {name}");
        if (r.Transform == TensorTransform.KeyHalfTransposed) return KvB(r.Layer, expectedShape);
        (GgufTensorInfo info, nint data) = Slice(r, expectedShape);
        if (Stored(info.Type) is { } stored) return Mapped((byte*)data, stored, expectedShape, Runtime);
        float[] values = Matrix(info, data, expectedShape, forProducts: false).Dequantize();
        Tensor dense = tensor(values, expectedShape);
        if (dense.dtype == Runtime.DType && Runtime.Device.type == TorchSharp.DeviceType.CPU) return dense;
        using (dense) return dense.to(Runtime.DType, Runtime.Device);
    }

    public override Projection LoadProjection(string name, long outFeatures, long inFeatures)
    {
        Resolved? r = Resolve(name + ".weight");
        // The absorbed attention slices kv_b_proj's dense weight (a legacy attn_kv_b, or the split halves rebuilt).
        if (r is null || name.EndsWith(".kv_b_proj", StringComparison.Ordinal)) return base.LoadProjection(name, outFeatures, inFeatures);
        (GgufTensorInfo info, nint data) = Slice(r, [outFeatures, inFeatures]);
        return Stored(info.Type) is null ? new Projection(name, Matrix(info, data, [outFeatures, inFeatures], forProducts: true)) : base.LoadProjection(name, outFeatures, inFeatures);
    }

    public override TokenEmbedding LoadEmbedding(string name, long vocab, long hidden)
    {
        Resolved r = Resolve(name + ".weight") ?? throw new KeyNotFoundException($"{_file.Path}: no GGUF tensor holds {name}.weight");
        (GgufTensorInfo info, nint data) = Slice(r, [vocab, hidden]);
        return Stored(info.Type) is null ? new TokenEmbedding(Matrix(info, data, [vocab, hidden], forProducts: false)) : base.LoadEmbedding(name, vocab, hidden);
    }

    /// <summary>
    /// attn_k_b and attn_v_b head by head, as llama.cpp's absorbed attention multiplies by them: quantised halves stay
    /// quantised (with its activation rounding); float halves are left to kv_b_proj's dense weight, which equals them.
    /// </summary>
    public override AbsorbedKv? LoadAbsorbedKv(string name)
    {
        if (_layout != KvLayout.Split || Resolve(name + ".weight") is not { } r) return null;
        GgufTensorInfo keys = _file.Tensor($"blk.{r.Layer}.attn_k_b.weight"), values = _file.Tensor($"blk.{r.Layer}.attn_v_b.weight");
        if (Stored(keys.Type) is not null || Stored(values.Type) is not null) return null;
        int heads = Config.NumAttentionHeads;
        long nope = Config.QkNopeHeadDim, value = Config.VHeadDim, rank = Config.KvLoraRank;
        if (!keys.Dimensions.SequenceEqual([nope, rank, heads]) || !values.Dimensions.SequenceEqual([rank, value, heads]))
            throw new InvalidDataException($"{_file.Path}: {keys.Name} ne [{string.Join(", ", keys.Dimensions)}] and {values.Name} ne " +
                                           $"[{string.Join(", ", values.Dimensions)}] do not fit heads {heads}, nope {nope}, v {value}, rank {rank}");
        IWeightMatrix[] Heads(GgufTensorInfo t, long rows, long row)
        {
            long headBytes = t.Type.ByteCount([row, rows]);
            return Enumerable.Range(0, heads)
                .Select(h => (IWeightMatrix)new QuantizedMatrix(_file.DataPointer(t) + headBytes * h, t.Type, rows, row, _threads, forProducts: true)).ToArray();
        }
        return new AbsorbedKv(Heads(keys, rank, nope), Heads(values, value, rank));
    }

    private sealed record Resolved(string Gguf, TensorTransform Transform, string Layer, int Expert);

    /// <summary>The GGUF tensor (and expert) an HF tensor name lives in, for this file's kv layout.</summary>
    private Resolved? Resolve(string hfName)
    {
        foreach (var (mapping, pattern) in Mappings)
        {
            if (mapping.OnlyIn is { } only && only != _layout) continue;
            Match match = pattern.Match(hfName);
            if (!match.Success) continue;
            string layer = match.Groups["i"].Value;
            int expert = match.Groups["e"].Success ? int.Parse(match.Groups["e"].Value) : -1;
            return new Resolved(mapping.Gguf.Replace("{i}", layer), mapping.Transform, layer, expert);
        }
        return null;
    }

    /// <summary>The tensor behind <paramref name="r"/> and the first byte of its [out, in] matrix, checked against the config.</summary>
    private (GgufTensorInfo Info, nint Data) Slice(Resolved r, long[] expectedShape)
    {
        GgufTensorInfo info = _file.Tensor(r.Gguf);
        long[] ne = info.Dimensions;
        nint data = (nint)_file.DataPointer(info);
        bool fits;
        if (r.Transform == TensorTransform.StackExperts)
        {
            fits = ne.Length == 3 && expectedShape.Length == 2 && ne[0] == expectedShape[1] && ne[1] == expectedShape[0] && r.Expert < ne[2];
            if (fits) data += checked((nint)(info.Type.ByteCount([ne[0], ne[1]]) * r.Expert));
        }
        else
        {
            fits = ne.Reverse().SequenceEqual(expectedShape);
        }
        if (!fits)
            throw new InvalidDataException($"{_file.Path}: tensor {r.Gguf} has ne [{string.Join(", ", ne)}], but the metadata implies " +
                                           $"[{string.Join(", ", expectedShape)}]{(r.Expert >= 0 ? $" for expert {r.Expert}" : "")}");
        return (info, data);
    }

    private QuantizedMatrix Matrix(GgufTensorInfo info, nint data, long[] shape, bool forProducts) =>
        new((byte*)data, info.Type, shape[0], shape.Length > 1 ? shape[1] : 1, _threads, forProducts);

    private static ScalarType? Stored(GgmlType type) => type switch
    {
        GgmlType.F32 => ScalarType.Float32,
        GgmlType.F16 => ScalarType.Float16,
        GgmlType.BF16 => ScalarType.BFloat16,
        _ => null,
    };

    /// <summary>
    /// kv_b_proj [n·(Dn+Dv), L] from the split layout: per head the key half is attn_k_b [n, L, Dn] transposed back,
    /// the value half attn_v_b [n, Dv, L] as is (DeepSeek2TensorMap's KeyHalfTransposed and ValueHalf, inverted).
    /// </summary>
    private Tensor KvB(string layer, long[] expectedShape)
    {
        int heads = Config.NumAttentionHeads, nope = Config.QkNopeHeadDim, value = Config.VHeadDim, rank = Config.KvLoraRank;
        using var scope = NewDisposeScope();
        Tensor key = Dense($"blk.{layer}.attn_k_b.weight", [heads, rank, nope]).transpose(1, 2);
        Tensor val = Dense($"blk.{layer}.attn_v_b.weight", [heads, value, rank]);
        Tensor kvB = cat([key, val], 1).reshape(expectedShape);
        return kvB.to(Runtime.DType, Runtime.Device).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>A small tensor as float32 on the CPU, in the caller's dispose scope.</summary>
    private Tensor Dense(string name, long[] shape)
    {
        GgufTensorInfo info = _file.Tensor(name);
        if (!info.Dimensions.Reverse().SequenceEqual(shape))
            throw new InvalidDataException($"{_file.Path}: tensor {info.Name} has ne [{string.Join(", ", info.Dimensions)}], but the metadata implies " +
                                           $"[{string.Join(", ", shape)}]");
        byte* data = _file.DataPointer(info);
        if (Stored(info.Type) is { } stored) return Mapped(data, stored, shape, TorchRuntime.Cpu);
        return tensor(new QuantizedMatrix(data, info.Type, shape[0] * shape[1], shape[2], 1, forProducts: false).Dequantize(), shape);
    }
}
