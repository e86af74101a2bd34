using Tune.Formats;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>
/// The weights of a memory-mapped Hugging Face checkpoint. When the file already holds the runtime's dtype and the
/// device is the CPU, a tensor aliases the mapping (no copy); such tensors are read-only and must never be written in
/// place (an in-place op on a read-only mapping kills the process). Tensors that <paramref name="trainable"/> selects
/// (full fine-tuning of chosen experts, a trained router) are therefore private float32 copies that require grad.
/// </summary>
public sealed class SafetensorsWeights(CheckpointDirectory checkpoint, TorchRuntime runtime, Func<string, bool>? trainable = null)
    : CheckpointWeights
{
    public CheckpointDirectory Checkpoint { get; } = checkpoint;
    public override DeepSeekV2Config Config => Checkpoint.Config;
    public override TorchRuntime Runtime { get; } = runtime;

    public override bool Contains(string name) => Checkpoint.Contains(name);

    /// <summary>The tensor <paramref name="name"/>, checked against the shape the config implies.</summary>
    public override unsafe Tensor Load(string name, params long[] expectedShape)
    {
        (SafetensorsFile file, TensorInfo info) = Checkpoint.Locate(name);
        if (!info.Shape.SequenceEqual(expectedShape))
            throw new InvalidDataException(
                $"{file.Path}: tensor {name} has shape [{string.Join(", ", info.Shape)}], " +
                $"but config.json implies [{string.Join(", ", expectedShape)}]");
        ScalarType stored = info.DType switch
        {
            DType.F32 => ScalarType.Float32,
            DType.F16 => ScalarType.Float16,
            DType.BF16 => ScalarType.BFloat16,
            _ => throw new InvalidDataException($"{file.Path}: tensor {name} is {info.DType}; weights must be F32, F16 or BF16"),
        };
        Tensor mapped = Mapped(file.DataPointer(info), stored, info.Shape, Runtime);
        if (trainable?.Invoke(name) != true) return mapped;
        using (mapped) return mapped.to(ScalarType.Float32, copy: true).requires_grad_(true);
    }
}
