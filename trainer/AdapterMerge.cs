using TorchSharp;
using Tune.Formats;
using Tune.Model;
using static TorchSharp.torch;

namespace Tune.Trainer;

/// <summary>
/// `tune merge`: base checkpoint + PEFT LoRA adapter → a full Hugging Face checkpoint with W' = W + scale·B·A, written
/// tensor by tensor (one tensor in memory at a time), in the base's dtype and shard count, under temporary names.
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
        using var adapter = PeftAdapterFile.Open(adapterDirectory);
        foreach (string module in adapter.Modules)
            if (!checkpoint.Contains(module + ".weight"))
                throw new InvalidDataException($"{adapter.WeightsPath}: adapts {module}, but {modelDirectory} has no tensor {module}.weight");
        var adapted = adapter.Modules.ToHashSet(StringComparer.Ordinal);

        List<TensorInfo> tensors = checkpoint.Tensors.ToList();
        int done = 0;
        var sources = tensors.Select(info => new TensorSource(info.Name, info.DType, info.Shape, bytes =>
        {
            (SafetensorsFile file, TensorInfo located) = checkpoint.Locate(info.Name);
            string module = info.Name.EndsWith(".weight", StringComparison.Ordinal) ? info.Name[..^".weight".Length] : "";
            if (adapted.Contains(module)) Merge(file, located, adapter, module, bytes);
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
