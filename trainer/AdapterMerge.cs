using TorchSharp;
using Tune.Formats;
using Tune.Model;
using Tune.Trainer.Esft;
using static TorchSharp.torch;

namespace Tune.Trainer;

/// <summary>
/// `tune merge`: base checkpoint + PEFT LoRA adapter → a full Hugging Face checkpoint with W' = W + scale·B·A, written
/// tensor by tensor (one tensor in memory at a time), in the base's dtype and shard count, under temporary names.
/// Routers the adapter saves whole (modules_to_save, from lora.train_router) replace the base's.
/// An ESFT full-mode output (esft_experts.safetensors, with or without a LoRA adapter beside it) replaces the trained
/// expert weights.
/// </summary>
public static class AdapterMerge
{
    private static readonly string[] SideFiles = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"];

    public static IReadOnlyList<string> Write(string modelDirectory, string adapterDirectory, string outputDirectory,
        Action<int, int>? progress = null)
    {
        if (Path.GetFullPath(modelDirectory) == Path.GetFullPath(outputDirectory))
            throw new ArgumentException($"--out {outputDirectory}: must differ from --model (the base is read while the merge is written)");
        using var checkpoint = CheckpointDirectory.Open(modelDirectory);
        string esftPath = Path.Combine(adapterDirectory, EsftExpertWeights.FileName);
        bool hasLora = File.Exists(Path.Combine(adapterDirectory, PeftAdapter.ConfigFile)) || !File.Exists(esftPath);
        using PeftAdapterFile? adapter = hasLora ? PeftAdapterFile.Open(adapterDirectory) : null;
        using SafetensorsFile? experts = File.Exists(esftPath) ? SafetensorsFile.Open(esftPath) : null;
        var adapted = (adapter?.Modules ?? []).ToHashSet(StringComparer.Ordinal);
        foreach (string module in adapted)
            if (!checkpoint.Contains(module + ".weight"))
                throw new InvalidDataException($"{adapter!.WeightsPath}: adapts {module}, but {modelDirectory} has no tensor {module}.weight");
        var saved = (adapter?.SavedModules ?? []).ToHashSet(StringComparer.Ordinal);
        foreach (string module in saved)
        {
            if (!checkpoint.Contains(module + ".weight"))
                throw new InvalidDataException($"{adapter!.WeightsPath}: saves {module}, but {modelDirectory} has no tensor {module}.weight");
            using var scope = NewDisposeScope();
            long[] shape = adapter!.SavedWeight(module).shape;
            if (!checkpoint.Locate(module + ".weight").Info.Shape.SequenceEqual(shape))
                throw new InvalidDataException($"{adapter.WeightsPath}: {module}.weight has shape [{string.Join(", ", shape)}], unlike the base's");
        }
        foreach (TensorInfo expert in experts?.Tensors ?? [])
        {
            if (!checkpoint.Contains(expert.Name))
                throw new InvalidDataException($"{esftPath}: holds {expert.Name}, which {modelDirectory} does not have");
            if (!checkpoint.Locate(expert.Name).Info.Shape.SequenceEqual(expert.Shape))
                throw new InvalidDataException($"{esftPath}: {expert.Name} has shape [{string.Join(", ", expert.Shape)}], unlike the base's");
            if (adapted.Contains(expert.Name[..^".weight".Length]))
                throw new InvalidDataException($"{esftPath}: {expert.Name} is also LoRA-adapted in {adapterDirectory}; merge one or the other");
        }

        List<TensorInfo> tensors = checkpoint.Tensors.ToList();
        int done = 0;
        var sources = tensors.Select(info => new TensorSource(info.Name, info.DType, info.Shape, bytes =>
        {
            (SafetensorsFile file, TensorInfo located) = checkpoint.Locate(info.Name);
            string module = info.Name.EndsWith(".weight", StringComparison.Ordinal) ? info.Name[..^".weight".Length] : "";
            if (adapted.Contains(module)) Merge(file, located, adapter!, module, bytes);
            else if (saved.Contains(module)) Replace(adapter!, module, located, bytes);
            else if (experts is not null && experts.TryGet(info.Name, out TensorInfo trained)) Replace(experts, trained, located, bytes);
            else file.Bytes(located).CopyTo(bytes);
            progress?.Invoke(++done, tensors.Count);
        })).ToList();
        IReadOnlyList<string> written = SafetensorsWriter.WriteSharded(outputDirectory, sources, checkpoint.ShardFiles.Count,
            new Dictionary<string, string> { ["format"] = "pt" });
        foreach (string side in SideFiles)
        {
            string source = Path.Combine(modelDirectory, side);
            if (File.Exists(source))
                AtomicFile.Write(Path.Combine(outputDirectory, side), s => { using FileStream input = File.OpenRead(source); input.CopyTo(s); });
        }
        return written;
    }

    /// <summary>An ESFT-trained expert weight replaces the base's, converted to the base's dtype.</summary>
    private static void Replace(SafetensorsFile experts, TensorInfo trained, TensorInfo weight, Span<byte> destination)
    {
        var values = new float[trained.ElementCount];
        experts.ReadFloat32(trained, values);
        FloatBits.FromFloat32(values, weight.DType, destination);
    }

    /// <summary>A router trained in full replaces the base's, converted to the base's dtype.</summary>
    private static void Replace(PeftAdapterFile adapter, string module, TensorInfo weight, Span<byte> destination)
    {
        using var scope = NewDisposeScope();
        FloatBits.FromFloat32(adapter.SavedWeight(module).data<float>().ToArray(), weight.DType, destination);
    }

    private static void Merge(SafetensorsFile file, TensorInfo weight, PeftAdapterFile adapter, string module, Span<byte> destination)
    {
        using var scope = NewDisposeScope();
        (Tensor a, Tensor b) = adapter.Matrices(module);
        if (weight.Shape.Length != 2 || a.shape[1] != weight.Shape[1] || b.shape[0] != weight.Shape[0])
            throw new InvalidDataException($"{adapter.WeightsPath}: {module}: A [{string.Join(", ", a.shape)}] and B [{string.Join(", ", b.shape)}] " +
                                           $"do not fit {weight.Name} [{string.Join(", ", weight.Shape)}]");
        var values = new float[weight.ElementCount];
        file.ReadFloat32(weight, values);
        Tensor merged = tensor(values, weight.Shape) + matmul(b, a) * adapter.Config.Scale;
        FloatBits.FromFloat32(merged.data<float>().ToArray(), weight.DType, destination);
    }
}
