using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Tune.Formats;
using Tune.Quantize;

namespace Tune.Convert;

/// <summary>What `tune convert --adapter` was asked to do.</summary>
public sealed record AdapterConvertOptions(string AdapterDirectory, string OutputPath)
{
    /// <summary>The base checkpoint; null takes adapter_config.json's base_model_name_or_path when it is a directory.</summary>
    public string? ModelDirectory { get; init; }

    /// <summary>Type of the LoRA matrices (F32 by default, as llama.cpp's convert_lora_to_gguf.py).</summary>
    public GgmlType Type { get; init; } = GgmlType.F32;

    /// <summary>general.name; null takes the base directory's name, as llama.cpp's converter does without a model card.</summary>
    public string? Name { get; init; }
}

/// <summary>
/// A PEFT LoRA adapter → GGUF LoRA adapter for llama.cpp's <c>deepseek2</c> (what convert_lora_to_gguf.py writes:
/// general.type adapter, adapter.type lora, adapter.lora.alpha, per adapted base tensor <c>{gguf name}.lora_a</c>
/// ne {in, r} and <c>.lora_b</c> ne {r, out}; routed experts stacked per layer like the base, ne {in, r, E} and
/// {r, out, E}). Where that converter or llama.cpp's graph would not compute the PEFT model, this writes what makes it
/// exact or refuses with the module named (docs/convert.md, "LoRA adapters").
/// </summary>
public sealed class AdapterToGgufConversion : IDisposable
{
    private const uint QuantizationVersion = 2;

    /// <summary>
    /// The deepseek2 weights llama.cpp multiplies through build_lora_mm / build_lora_mm_id, the only places a LoRA
    /// is applied (src/models/deepseek2.cpp, src/llama-graph.cpp, llama.cpp de3ff815). attn_q, attn_q_a, attn_q_b,
    /// attn_kv_a_mqa, attn_k_b, attn_v_b and attn_kv_b go through plain ggml_mul_mat: a LoRA on them loads and
    /// changes nothing.
    /// </summary>
    private static readonly string[] LoraApplied =
    [
        "attn_output", "ffn_gate", "ffn_up", "ffn_down", "ffn_gate_inp",
        "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps", "ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp",
    ];

    private readonly PeftAdapterDirectory _adapter;
    private readonly CheckpointDirectory _checkpoint;
    private readonly IReadOnlyList<(AdapterTensor Tensor, Func<float[]> Values)> _tensors;

    private AdapterToGgufConversion(AdapterConvertOptions options, PeftAdapterDirectory adapter, CheckpointDirectory checkpoint, float alpha,
        IReadOnlyList<(AdapterTensor, Func<float[]>)> tensors, IReadOnlyList<KeyValuePair<string, GgufValue>> metadata, IReadOnlyList<string> notes)
    {
        (Options, _adapter, _checkpoint, Alpha, _tensors, Metadata, Notes) = (options, adapter, checkpoint, alpha, tensors, metadata, notes);
    }

    public AdapterConvertOptions Options { get; }

    /// <summary>adapter.lora.alpha: llama.cpp scales each pair by alpha / (its rank), so this is PEFT's scaling × r.</summary>
    public float Alpha { get; }

    public IEnumerable<AdapterTensor> Tensors => _tensors.Select(t => t.Tensor);

    public IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata { get; }

    /// <summary>What this file says differently from llama.cpp's converter, and why.</summary>
    public IReadOnlyList<string> Notes { get; }

    public long ByteCount => _tensors.Sum(t => t.Tensor.ByteLength);

    /// <summary>Opens and checks the adapter against the base's config and tensors, and plans the file; writes nothing.</summary>
    public static AdapterToGgufConversion Prepare(AdapterConvertOptions options)
    {
        var adapter = PeftAdapterDirectory.Open(options.AdapterDirectory);
        CheckpointDirectory? checkpoint = null;
        try
        {
            checkpoint = CheckpointDirectory.Open(BaseDirectory(options, adapter));
            var notes = new List<string>();
            var planned = Plan(adapter, checkpoint, options.Type, notes);
            PeftAdapterConfig config = adapter.Config;
            float alpha = (float)(config.Scale * config.Rank);
            if (config.UseRsLora)
                notes.Add($"use_rslora: llama.cpp scales by alpha / r, so adapter.lora.alpha is alpha·√r = {alpha:G6} (llama.cpp's converter writes lora_alpha {config.Alpha}, which would scale by {config.Alpha / config.Rank:G6} instead of {config.Scale:G6})");

            string name = options.Name ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(checkpoint.Directory)));
            var metadata = new List<KeyValuePair<string, GgufValue>>
            {
                new("general.architecture", GgufValue.String(DeepSeek2Metadata.Architecture)),
                new("general.type", GgufValue.String("adapter")),
                new("adapter.type", GgufValue.String("lora")),
                new("general.name", GgufValue.String(name)),
                new("general.size_label", GgufValue.String(DeepSeek2Metadata.SizeLabel(planned.Sizes))),
                new("adapter.lora.alpha", GgufValue.Float32(alpha)),
                new("general.quantization_version", GgufValue.UInt32(QuantizationVersion)),
            };
            return new AdapterToGgufConversion(options, adapter, checkpoint, alpha, planned.Tensors, metadata, notes);
        }
        catch
        {
            checkpoint?.Dispose();
            adapter.Dispose();
            throw;
        }
    }

    /// <summary>Writes the file under a temporary name, renamed when complete; on failure nothing is left under the output name.</summary>
    public void Write(CancellationToken cancellation = default)
    {
        string? directory = Path.GetDirectoryName(Path.GetFullPath(Options.OutputPath));
        if (directory is not null && !Directory.Exists(directory))
            throw new DirectoryNotFoundException($"--out {Options.OutputPath}: the directory {directory} does not exist");
        var sources = _tensors.Select(t => new GgufTensorSource(t.Tensor.Name, t.Tensor.Type, t.Tensor.Dimensions,
            sink => sink.Write(Encode(t.Tensor, t.Values())))).ToArray();
        GgufWriter.Write(Options.OutputPath, Metadata, sources, cancellation);
    }

    public void Dispose()
    {
        _checkpoint.Dispose();
        _adapter.Dispose();
    }

    private static string BaseDirectory(AdapterConvertOptions options, PeftAdapterDirectory adapter)
    {
        if (options.ModelDirectory is { } given) return given;
        string? named = adapter.Config.BaseModel;
        if (named is not null && File.Exists(Path.Combine(named, CheckpointDirectory.ConfigFileName))) return named;
        throw new ArgumentException($"--model: not given, and {Path.Combine(adapter.Directory, PeftAdapterDirectory.ConfigFile)}'s base_model_name_or_path " +
                                    $"({(named is null ? "absent" : $"\"{named}\"")}) is not a directory with config.json; pass --model BASE_DIR " +
                                    "(the checkpoint the adapter was trained on: its config shapes the file, and saved routers are written as their difference from it)");
    }

    private sealed record Planned(IReadOnlyList<(AdapterTensor, Func<float[]>)> Tensors, IReadOnlyList<PlannedTensor> Sizes);

    private static Planned Plan(PeftAdapterDirectory adapter, CheckpointDirectory checkpoint, GgmlType type, List<string> notes)
    {
        DeepSeekV2Config c = checkpoint.Config;
        // llama.cpp's converter reads the adapter's tensors in name order and writes each output once its last source is
        // read; a layer's expert stacks come together after its last expert tensor, down, gate, up.
        var readOrder = adapter.LoraModules.Concat(adapter.SavedModules).Order(StringComparer.Ordinal)
            .Select((m, i) => (m, i)).ToDictionary(p => p.m, p => p.i, StringComparer.Ordinal);
        var outputs = new List<(int Position, int Entry, string Name, long[] BaseNe, Func<(float[] A, float[] B)> Make, bool Router)>();
        var rejected = new List<(string Module, string Gguf)>();
        var stacks = new Dictionary<string, (int Entry, int Layer, TensorInfo Base, SortedDictionary<int, string> Experts)>(StringComparer.Ordinal);

        foreach (string module in adapter.LoraModules)
        {
            TensorInfo weight = BaseWeight(adapter, checkpoint, module, "adapts");
            TensorInfo a = adapter.LoraA(module), b = adapter.LoraB(module);
            if (weight.Shape.Length != 2 || a.Shape[1] != weight.Shape[1] || b.Shape[0] != weight.Shape[0])
                throw new InvalidDataException($"{adapter.WeightsPath}: {module}: A [{string.Join(", ", a.Shape)}] and B [{string.Join(", ", b.Shape)}] " +
                                               $"do not fit {weight.Name} [{string.Join(", ", weight.Shape)}] of {checkpoint.Directory}");
            var matches = DeepSeek2TensorMap.Match(weight.Name, KvLayout.Split).ToList();
            if (matches.Count == 0) throw new InvalidDataException($"{adapter.WeightsPath}: {module}: no GGUF tensor for {weight.Name}");
            if (matches.Any(m => !Applied(m.Gguf)))
            {
                rejected.Add((module, string.Join(" + ", matches.Select(m => m.Gguf))));
                continue;
            }
            (TensorMapping mapping, string gguf, int layer, int expert) = matches[0];
            int entry = DeepSeek2TensorMap.Table.ToList().IndexOf(mapping);
            if (mapping.Transform == TensorTransform.StackExperts)
            {
                if (!stacks.TryGetValue(gguf, out var stack)) stacks[gguf] = stack = (entry, layer, weight, new SortedDictionary<int, string>());
                stack.Experts[expert] = module;
                continue;
            }
            outputs.Add((readOrder[module], entry, gguf, [weight.Shape[1], weight.Shape[0]],
                () => (adapter.ReadFloat32(a), adapter.ReadFloat32(b)), false));
        }

        foreach (string module in adapter.SavedModules)
        {
            TensorInfo weight = BaseWeight(adapter, checkpoint, module, "saves");
            var matches = DeepSeek2TensorMap.Match(weight.Name, KvLayout.Split).ToList();
            if (matches.Count != 1 || !matches[0].Gguf.EndsWith(".ffn_gate_inp.weight", StringComparison.Ordinal))
                throw new InvalidDataException($"{adapter.WeightsPath}: {module} is saved whole (modules_to_save); only routers (mlp.gate) can be " +
                                               "written to a GGUF adapter, as an exact LoRA of their difference from the base");
            TensorInfo trained = adapter.Saved(module);
            if (!trained.Shape.SequenceEqual(weight.Shape))
                throw new InvalidDataException($"{adapter.WeightsPath}: {module}.weight has shape [{string.Join(", ", trained.Shape)}], " +
                                               $"but {checkpoint.Directory}'s {weight.Name} is [{string.Join(", ", weight.Shape)}]");
            int entry = DeepSeek2TensorMap.Table.ToList().IndexOf(matches[0].Mapping);
            outputs.Add((readOrder[module], entry, matches[0].Gguf, [weight.Shape[1], weight.Shape[0]], () => RouterDelta(adapter, checkpoint, trained, weight), true));
        }
        if (adapter.SavedModules.Count > 0)
            notes.Add($"{adapter.SavedModules.Count} router(s) saved whole (modules_to_save): llama.cpp's converter cannot write them; each is written as " +
                      "an exact LoRA of its difference from the base router (rank = expert count), in f32 like the router itself");

        if (rejected.Count > 0)
            throw new InvalidDataException(
                $"{adapter.WeightsPath}: LoRA on {string.Join(", ", rejected.Select(r => $"{r.Module} ({r.Gguf})"))}: llama.cpp's deepseek2 graph " +
                "multiplies these weights without their LoRA (ggml_mul_mat, not build_lora_mm, in src/models/deepseek2.cpp), so a GGUF adapter " +
                "would load and change nothing there. Only o_proj and the MLPs (dense, shared and routed experts) and saved routers can be a " +
                "GGUF adapter; for the rest, merge (tune merge --model BASE --adapter DIR --out MERGED) and convert the merged model");

        int rank = adapter.Config.Rank;
        foreach ((string gguf, (int entry, int layer, TensorInfo baseWeight, SortedDictionary<int, string> experts)) in stacks)
        {
            int count = c.NRoutedExperts ?? throw new InvalidDataException($"{adapter.WeightsPath}: adapts routed experts, but the base has none");
            long output = baseWeight.Shape[0], input = baseWeight.Shape[1];
            int position = readOrder.Where(p => p.Key.StartsWith($"model.layers.{layer}.mlp.experts.", StringComparison.Ordinal)).Max(p => p.Value);
            outputs.Add((position, entry, gguf, [input, output, count], () =>
            {
                // Experts the adapter leaves alone get zero matrices: llama.cpp's converter needs every expert, and B = 0 adds nothing.
                float[] a = new float[count * rank * input], b = new float[count * output * rank];
                foreach ((int e, string module) in experts)
                {
                    adapter.ReadFloat32(adapter.LoraA(module)).CopyTo(a, e * rank * input);
                    adapter.ReadFloat32(adapter.LoraB(module)).CopyTo(b, e * output * rank);
                }
                return (a, b);
            }, false));
        }

        var fallbacks = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var tensors = new List<(AdapterTensor, Func<float[]>)>();
        var sizes = new List<PlannedTensor>();
        foreach (var o in outputs.OrderBy(o => o.Position).ThenBy(o => o.Entry).ThenBy(o => o.Name, StringComparer.Ordinal))
        {
            sizes.Add(new PlannedTensor(o.Name, o.BaseNe, GgmlType.F32, TensorTransform.Copy, []));
            // One computation feeds both tensors of the pair: the router's delta is read from two files.
            Lazy<(float[] A, float[] B)> pair = new(o.Make);
            (long[] neA, long[] neB) = Dimensions(o.BaseNe, o.Router, rank);
            tensors.Add((Typed(o.Name + ".lora_a", neA, o.Router ? GgmlType.F32 : type, fallbacks), () => pair.Value.A));
            tensors.Add((Typed(o.Name + ".lora_b", neB, o.Router ? GgmlType.F32 : type, fallbacks), () => pair.Value.B));
        }
        foreach (var (name, row) in fallbacks)
            notes.Add($"{name}: rows of {row} values are not whole {type.Name()} blocks of {type.BlockSize()}; written as f16, as llama.cpp's converter does");
        return new Planned(tensors, sizes);
    }

    /// <summary>The ne of lora_a and lora_b for a base tensor of ne <paramref name="baseNe"/> (known before any value is read).</summary>
    private static (long[] A, long[] B) Dimensions(long[] baseNe, bool router, int rank)
    {
        if (router)
        {
            long k = Math.Min(baseNe[0], baseNe[1]);
            return ([baseNe[0], k], [k, baseNe[1]]);
        }
        return baseNe.Length == 3 ? ([baseNe[0], rank, baseNe[2]], [rank, baseNe[1], baseNe[2]]) : ([baseNe[0], rank], [rank, baseNe[1]]);
    }

    private static AdapterTensor Typed(string name, long[] ne, GgmlType type, SortedDictionary<string, long> fallbacks)
    {
        if (ne[0] % type.BlockSize() != 0)
        {
            fallbacks[System.Text.RegularExpressions.Regex.Replace(name, @"^blk\.\d+\.", "blk.N.")] = ne[0];
            type = GgmlType.F16;
        }
        return new AdapterTensor(name, ne, type);
    }

    private static bool Applied(string gguf) =>
        LoraApplied.Contains(System.Text.RegularExpressions.Regex.Replace(gguf, @"^blk\.\d+\.(.+)\.weight$", "$1"));

    private static TensorInfo BaseWeight(PeftAdapterDirectory adapter, CheckpointDirectory checkpoint, string module, string verb) =>
        checkpoint.Contains(module + ".weight")
            ? checkpoint.Locate(module + ".weight").Info
            : throw new InvalidDataException($"{adapter.WeightsPath}: {verb} {module}, but {checkpoint.Directory} has no tensor {module}.weight");

    /// <summary>
    /// A trained router W' = W + Δ as a LoRA of full rank k = min(E, D): Δ [E, D] is one factor and (k / alpha)·I the
    /// other, so llama.cpp's alpha / k scaling gives back exactly Δ.
    /// </summary>
    private static (float[] A, float[] B) RouterDelta(PeftAdapterDirectory adapter, CheckpointDirectory checkpoint,
        TensorInfo trained, TensorInfo weight)
    {
        float[] delta = adapter.ReadFloat32(trained);
        TensorPrimitives.Subtract(delta, checkpoint.ReadFloat32(weight.Name), delta);
        long experts = weight.Shape[0], hidden = weight.Shape[1], k = Math.Min(experts, hidden);
        float alpha = (float)(adapter.Config.Scale * adapter.Config.Rank);
        float[] identity = new float[k * k];
        for (long i = 0; i < k; i++) identity[i * k + i] = k / alpha;
        // A is [k, D] (ne {D, k}) and B [E, k] (ne {k, E}): Δ is A when k = E, B when k = D.
        return experts <= hidden ? (delta, identity) : (identity, delta);
    }

    private static byte[] Encode(AdapterTensor t, float[] values)
    {
        byte[] bytes = new byte[t.ByteLength];
        try
        {
            switch (t.Type)
            {
                case GgmlType.F32:
                    MemoryMarshal.AsBytes(values.AsSpan()).CopyTo(bytes);
                    break;
                case GgmlType.F16:
                    TensorPrimitives.ConvertToHalf(values, MemoryMarshal.Cast<byte, Half>(bytes.AsSpan()));
                    break;
                case GgmlType.BF16:
                    FloatBits.FromFloat32(values, DType.BF16, bytes);
                    break;
                case GgmlType.Q8_0:
                    Q8_0Codec.Instance.Quantize(values, bytes);
                    break;
                default:
                    throw new ArgumentException($"cannot encode {t.Type.Name()}");
            }
        }
        catch (NonFiniteWeightException e)
        {
            throw new InvalidDataException($"tensor \"{t.Name}\": {e.Message}", e);
        }
        return bytes;
    }
}

/// <summary>A tensor of a GGUF LoRA adapter: name (…lora_a / …lora_b), ggml dimensions and type.</summary>
public sealed record AdapterTensor(string Name, long[] Dimensions, GgmlType Type)
{
    public long ByteLength => Type.ByteCount(Dimensions);
}
