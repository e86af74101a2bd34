using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using Tune.Formats;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>
/// Turns tensors of a memory-mapped checkpoint into torch tensors of the runtime's dtype and device. When the file
/// already holds that dtype and the device is the CPU, the tensor aliases the mapping (no copy); such tensors are
/// read-only and must never be written in place (an in-place op on a read-only mapping kills the process). Tensors
/// that <paramref name="trainable"/> selects (full fine-tuning of chosen experts, a trained router) are therefore
/// private float32 copies that require grad.
/// </summary>
public sealed unsafe class CheckpointWeights(CheckpointDirectory checkpoint, TorchRuntime runtime, Func<string, bool>? trainable = null)
{
    public CheckpointDirectory Checkpoint { get; } = checkpoint;
    public TorchRuntime Runtime { get; } = runtime;

    public bool Contains(string name) => Checkpoint.Contains(name);

    /// <summary>The tensor <paramref name="name"/>, checked against the shape the config implies.</summary>
    public Tensor Load(string name, params long[] expectedShape)
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
        torch.InitializeDeviceType(Runtime.Device.type);
        IntPtr handle;
        fixed (long* shape = info.Shape)
        {
            handle = THSTensor_new((IntPtr)file.DataPointer(info), &KeepMapping, shape, info.Shape.Length,
                (sbyte)stored, (sbyte)Runtime.DType, (int)Runtime.Device.type, Runtime.Device.index, 0);
        }
        if (handle == IntPtr.Zero) torch.CheckForErrors();
        Tensor mapped = Tensor.UnsafeCreateTensor(handle);
        if (trainable?.Invoke(name) != true) return mapped;
        using (mapped) return mapped.to(ScalarType.Float32, copy: true).requires_grad_(true);
    }

    /// <summary>The mapping belongs to the checkpoint, which outlives the model, so libtorch must not free it.</summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void KeepMapping(IntPtr data) { }

    // TorchSharp 0.107's exported from_blob factory (src/Native/LibTorchSharp/THSTensorFactories.cpp): converts to
    // dtype and moves to the device when they differ from the source, and wraps the memory as is when they don't.
    [DllImport("LibTorchSharp")]
    private static extern IntPtr THSTensor_new(IntPtr data, delegate* unmanaged[Cdecl]<IntPtr, void> deleter,
        long* sizes, int ndim, sbyte scalarType, sbyte dtype, int deviceType, int deviceIndex, byte requiresGrad);
}
