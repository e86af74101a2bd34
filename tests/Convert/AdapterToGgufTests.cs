using TorchSharp;
using Tune.Convert;
using Tune.Formats;
using Tune.Model;
using Tune.Model.Tokenization;
using Tune.Trainer;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Tune.Tests.Convert;

/// <summary>
/// A PEFT adapter (o_proj, dense MLP, shared experts, some routed experts per layer, rsLoRA, trained routers) on the
/// convert test model, written as a GGUF LoRA adapter and run by llama.cpp over the base GGUF, against Tune's
/// base + adapter forward pass and against the merged model converted to GGUF. Built once for the class; llama.cpp
/// runs every file in one process.
/// </summary>
public sealed class AdapterInterop : IDisposable
{
    public static readonly LoraConfig Lora = new()
    {
        Rank = 4,
        Alpha = 8,
        UseRsLora = true,
        TargetModules = ["o_proj", .. LoraConfig.MlpModules],
        // Experts left out of a layer get zero slabs in the stacked tensors.
        RoutedExperts = new Dictionary<int, IReadOnlyList<int>> { [1] = [0, 3, 5], [2] = [1, 2, 6, 7] },
    };

    public AdapterInterop()
    {
        DeepSeekTokenizer tokenizer = DeepSeekTokenizer.Load(RepoPaths.Tokenizers);
        Prompt = [tokenizer.BosId, .. tokenizer.EncodeText(LlamaCppInterop.Text)];
        string checkpoint = ConvertModels.Checkpoint(ConvertModels.Base);
        Adapter = ConvertModels.NewDirectory("peft-adapter");
        using (var source = CheckpointDirectory.Open(checkpoint))
        using (var model = DeepSeekV2ForCausalLM.Load(source, TorchRuntime.Cpu, name => name.EndsWith(".mlp.gate.weight", StringComparison.Ordinal)))
        {
            BaseLogits = LlamaCppInterop.Forward(model, Prompt);
            LoraInjection.Attach(model, Lora, seed: 11);
            var generator = new Generator(12);
            using (no_grad())
            {
                foreach ((_, Projection p) in LoraInjection.Projections(model).Where(p => p.Projection.HasLora))
                    p.LoraB!.copy_(randn(p.LoraB.shape, generator: generator) * 0.3);
                foreach ((_, MoeRouter router) in PeftAdapter.Routers(model))
                    router.Weight.add_(randn(router.Weight.shape, generator: generator) * 0.3);
            }
            AdaptedLogits = LlamaCppInterop.Forward(model, Prompt);
            PeftAdapter.Save(model, Lora, Adapter, checkpoint);
        }

        BaseGguf = ConvertModels.Convert(checkpoint, $"adapter-base-{Guid.NewGuid():N}.gguf", GgmlType.F32);
        AdapterGguf = Path.Combine(ConvertModels.Root, $"adapter-{Guid.NewGuid():N}.gguf");
        using (var conversion = AdapterToGgufConversion.Prepare(new AdapterConvertOptions(Adapter, AdapterGguf) { ModelDirectory = checkpoint }))
        {
            Notes = conversion.Notes;
            conversion.Write();
        }
        string merged = ConvertModels.NewDirectory("adapter-merged");
        AdapterMerge.Write(checkpoint, Adapter, merged);
        MergedGguf = ConvertModels.Convert(merged, $"adapter-merged-{Guid.NewGuid():N}.gguf", GgmlType.F32);
        IgnoredGguf = IgnoredQueryAdapter(BaseGguf);

        float[][][] llama = LlamaCppLogits.Evaluate(
        [
            new(BaseGguf, Prompt, AdapterGguf),
            new(MergedGguf, Prompt),
            new(BaseGguf, Prompt),
            new(BaseGguf, Prompt, IgnoredGguf),
        ], ConvertModels.Base.VocabSize);
        (BaseWithAdapter, Merged, Base, BaseWithQueryLora) = (llama[0], llama[1], llama[2], llama[3]);
    }

    public int[] Prompt { get; }
    public string Adapter { get; }
    public string BaseGguf { get; }
    public string AdapterGguf { get; }
    public string MergedGguf { get; }
    public string IgnoredGguf { get; }
    public IReadOnlyList<string> Notes { get; }
    public float[][] BaseLogits { get; }
    public float[][] AdaptedLogits { get; }
    public float[][] BaseWithAdapter { get; }
    public float[][] Merged { get; }
    public float[][] Base { get; }
    public float[][] BaseWithQueryLora { get; }

    public void Dispose()
    {
        foreach (string file in new[] { BaseGguf, AdapterGguf, MergedGguf, IgnoredGguf }) File.Delete(file);
    }

    /// <summary>
    /// A GGUF adapter with one large LoRA on blk.0.attn_q, written by hand: what llama.cpp's graph does with LoRA on a
    /// weight it multiplies without build_lora_mm, the reason `tune convert --adapter` refuses such modules.
    /// </summary>
    private static string IgnoredQueryAdapter(string baseGguf)
    {
        using var file = GgufFile.Open(baseGguf);
        long[] ne = file.Tensor("blk.0.attn_q.weight").Dimensions;
        var random = new Random(5);
        float[] Values(long n) => Enumerable.Range(0, (int)n).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        GgufTensorSource F32(string name, long[] dims)
        {
            float[] values = Values(dims[0] * dims[1]);
            return new GgufTensorSource(name, GgmlType.F32, dims, sink => sink.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan())));
        }
        string path = Path.Combine(ConvertModels.Root, $"ignored-q-{Guid.NewGuid():N}.gguf");
        GgufWriter.Write(path,
        [
            new("general.architecture", GgufValue.String("deepseek2")),
            new("general.type", GgufValue.String("adapter")),
            new("adapter.type", GgufValue.String("lora")),
            new("adapter.lora.alpha", GgufValue.Float32(4)),
        ],
        [F32("blk.0.attn_q.weight.lora_a", [ne[0], 4]), F32("blk.0.attn_q.weight.lora_b", [4, ne[1]])]);
        return path;
    }
}

[Collection("torch")]
public sealed class AdapterToGgufTests(AdapterInterop run, ITestOutputHelper output) : IClassFixture<AdapterInterop>
{
    private LlamaCppInterop.Agreement Report(string name, float[][] expected, float[][] actual)
    {
        LlamaCppInterop.Agreement a = LlamaCppInterop.Compare(expected, actual);
        output.WriteLine($"{name}: {a.SameTop1}/{a.Positions} same top-1, max |Δp| {a.MaxDp:E2}, max |Δlogit| {a.MaxDLogit:E2} (largest p {a.MaxP:F3})");
        return a;
    }

    [Fact]
    public void LlamaCppWithTheGgufAdapterComputesTuneBasePlusAdapter()
    {
        LlamaCppInterop.Agreement change = Report("Tune base vs Tune base + adapter", run.BaseLogits, run.AdaptedLogits);
        Assert.True(change.MaxDLogit > 0.5 && change.SameTop1 < change.Positions, "the adapter must change the model, or agreement says nothing");

        LlamaCppInterop.Agreement a = Report("llama.cpp base + GGUF adapter vs Tune base + adapter", run.AdaptedLogits, run.BaseWithAdapter);
        Assert.True(a.MaxP > 0.2, "the test distributions must be peaked, or |Δp| says nothing");
        Assert.Equal(a.Positions, a.SameTop1);
        Assert.True(a.MaxDp <= 1e-3, $"max |Δp| {a.MaxDp:E2} > 1e-3");
    }

    [Fact]
    public void LlamaCppWithTheGgufAdapterComputesTheMergedModel()
    {
        LlamaCppInterop.Agreement merged = Report("llama.cpp merged GGUF vs Tune base + adapter", run.AdaptedLogits, run.Merged);
        Assert.Equal(merged.Positions, merged.SameTop1);
        LlamaCppInterop.Agreement a = Report("llama.cpp base + GGUF adapter vs llama.cpp merged GGUF", run.Merged, run.BaseWithAdapter);
        Assert.Equal(a.Positions, a.SameTop1);
        Assert.True(a.MaxDp <= 1e-3, $"max |Δp| {a.MaxDp:E2} > 1e-3");
    }

    [Fact]
    public void LlamaCppIgnoresLoraOnTheQueryProjection()
    {
        // The reason q_proj, q_a/q_b, kv_a_proj_with_mqa and kv_b_proj adapters are refused: they would load and do nothing.
        Report("llama.cpp base vs Tune base", run.BaseLogits, run.Base);
        double diff = run.Base.Zip(run.BaseWithQueryLora, (p, q) => p.Zip(q, (x, y) => Math.Abs(x - y)).Max()).Max();
        output.WriteLine($"base + a large attn_q LoRA vs base in llama.cpp: max |Δlogit| {diff:E2}");
        Assert.True(diff < 1e-5, $"max |Δlogit| {diff:E2}: llama.cpp now applies LoRA to attn_q; tune convert --adapter could write it");
    }

    [Fact]
    public void TheFileIsWhatLlamaCppsConverterWritesForDeepseek2()
    {
        using var file = GgufFile.Open(run.AdapterGguf);
        Assert.Equal(["general.architecture", "general.type", "adapter.type", "general.name", "general.size_label", "adapter.lora.alpha", "general.quantization_version"],
            file.Metadata.Select(m => m.Key));
        Assert.Equal("deepseek2", file.Get<string>("general.architecture"));
        Assert.Equal("adapter", file.Get<string>("general.type"));
        Assert.Equal("lora", file.Get<string>("adapter.type"));
        // rsLoRA scales by alpha/√r; llama.cpp by alpha/r, so the file's alpha is alpha·√r.
        Assert.Equal((float)(8 / Math.Sqrt(4) * 4), file.Get<float>("adapter.lora.alpha"));
        Assert.Contains(run.Notes, n => n.StartsWith("use_rslora", StringComparison.Ordinal));

        Assert.Equal([64, 4], file.Tensor("blk.0.attn_output.weight.lora_a").Dimensions);
        Assert.Equal([4, 64], file.Tensor("blk.0.attn_output.weight.lora_b").Dimensions);
        Assert.Equal([64, 4], file.Tensor("blk.0.ffn_gate.weight.lora_a").Dimensions);
        Assert.Equal([4, 160], file.Tensor("blk.0.ffn_gate.weight.lora_b").Dimensions);
        Assert.Equal([64, 4], file.Tensor("blk.1.ffn_down_shexp.weight.lora_a").Dimensions);   // 2 shared experts of 32
        Assert.Equal([64, 4, 8], file.Tensor("blk.1.ffn_up_exps.weight.lora_a").Dimensions);
        Assert.Equal([4, 32, 8], file.Tensor("blk.1.ffn_up_exps.weight.lora_b").Dimensions);
        Assert.Equal([64, 8], file.Tensor("blk.2.ffn_gate_inp.weight.lora_a").Dimensions);
        Assert.Equal([8, 8], file.Tensor("blk.2.ffn_gate_inp.weight.lora_b").Dimensions);
        Assert.False(file.TryGetTensor("blk.0.attn_q.weight.lora_a", out _));
        // Each adapted output has exactly a lora_a and a lora_b; nothing else is in the file.
        Assert.All(file.Tensors, t => Assert.True(t.Name.EndsWith(".lora_a", StringComparison.Ordinal) || t.Name.EndsWith(".lora_b", StringComparison.Ordinal)));

        // Expert e of a stack is the e-th slab: layer 1 adapts experts 0, 3 and 5 only.
        float[] a = GgufTensorValues.Read(file, "blk.1.ffn_up_exps.weight.lora_a");
        using var adapter = PeftAdapterDirectory.Open(run.Adapter);
        float[] expert3 = adapter.ReadFloat32(adapter.LoraA("model.layers.1.mlp.experts.3.up_proj"));
        Assert.Equal(expert3, a.AsSpan(3 * expert3.Length, expert3.Length).ToArray());
        Assert.All(a.AsSpan(1 * expert3.Length, expert3.Length).ToArray(), v => Assert.Equal(0f, v));
        Assert.Contains(a.AsSpan(5 * expert3.Length, expert3.Length).ToArray(), v => v != 0);
    }

    [Fact]
    public void AnAdapterOnAProjectionLlamaCppDoesNotAdaptIsRefusedByModule()
    {
        string checkpoint = ConvertModels.Checkpoint(ConvertModels.Base);
        string adapter = ConvertModels.NewDirectory("query-adapter");
        var lora = new LoraConfig { Rank = 2, TargetModules = ["kv_b_proj", "o_proj"] };
        using (var source = CheckpointDirectory.Open(checkpoint))
        using (var model = DeepSeekV2ForCausalLM.Load(source, TorchRuntime.Cpu))
        {
            LoraInjection.Attach(model, lora, seed: 3);
            PeftAdapter.Save(model, lora, adapter, checkpoint);
        }
        string path = Path.Combine(ConvertModels.Root, $"refused-{Guid.NewGuid():N}.gguf");
        var error = Assert.Throws<InvalidDataException>(() => AdapterToGgufConversion.Prepare(new AdapterConvertOptions(adapter, path)));
        output.WriteLine(error.Message);
        Assert.Contains("model.layers.0.self_attn.kv_b_proj (blk.0.attn_k_b.weight + blk.0.attn_v_b.weight)", error.Message);
        Assert.DoesNotContain("o_proj (", error.Message);
        Assert.Contains("tune merge", error.Message);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void WithoutModelTheBaseComesFromTheAdapterConfig()
    {
        // adapter_config.json's base_model_name_or_path is the checkpoint directory here, as `tune train` writes it.
        string path = Path.Combine(ConvertModels.Root, $"no-model-{Guid.NewGuid():N}.gguf");
        using var conversion = AdapterToGgufConversion.Prepare(new AdapterConvertOptions(run.Adapter, path) { Type = GgmlType.Q8_0 });
        conversion.Write();
        using var file = GgufFile.Open(path);
        // r = 4 is no whole Q8_0 block: lora_b falls back to f16 as in gguf-py; routers stay f32.
        Assert.Equal(GgmlType.Q8_0, file.Tensor("blk.0.attn_output.weight.lora_a").Type);
        Assert.Equal(GgmlType.F16, file.Tensor("blk.0.attn_output.weight.lora_b").Type);
        Assert.Equal(GgmlType.F32, file.Tensor("blk.1.ffn_gate_inp.weight.lora_a").Type);
        File.Delete(path);
    }
}
