using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using Tune.Formats;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>
/// What the graph is built from: tensors by their Hugging Face checkpoint name, as torch tensors of the runtime's
/// dtype and device (<see cref="SafetensorsWeights"/>), or as weights in another format that the graph multiplies by
/// through <see cref="IWeightMatrix"/> (quantised GGUF, serve/Gguf). Every module asks for its weights by name, so the
/// graph exists once whatever the file.
/// </summary>
public abstract unsafe class CheckpointWeights
{
    public abstract DeepSeekV2Config Config { get; }
    public abstract TorchRuntime Runtime { get; }

    /// <summary>Expert parallelism: only this rank's block of routed experts is loaded, and MoE layers exchange
    /// tokens with the other ranks. Null: one process holds every expert.</summary>
    public Distributed.ExpertSharding? Sharding { get; init; }

    public abstract bool Contains(string name);

    /// <summary>The tensor <paramref name="name"/>, checked against the shape the config implies.</summary>
    public abstract Tensor Load(string name, params long[] expectedShape);

    /// <summary>The bias-free linear layer <paramref name="name"/> (its weight is name.weight, [out, in]).</summary>
    public virtual Projection LoadProjection(string name, long outFeatures, long inFeatures) =>
        new(name, Load(name + ".weight", outFeatures, inFeatures));

    /// <summary>
    /// kv_b_proj's per-head halves for the absorbed attention when the file stores them as matrices of their own
    /// (GGUF attn_k_b and attn_v_b), so that attention multiplies by them as the file's runtime does; null: the
    /// absorbed form slices kv_b_proj's dense weight.
    /// </summary>
    public virtual AbsorbedKv? LoadAbsorbedKv(string name) => null;

    /// <summary>The token embedding table <paramref name="name"/>.weight [vocab, hidden].</summary>
    public virtual TokenEmbedding LoadEmbedding(string name, long vocab, long hidden) => new(Load(name + ".weight", vocab, hidden));

    /// <summary>
    /// A tensor over memory the caller keeps alive for the model's lifetime (a file mapping): aliased when
    /// <paramref name="stored"/> is the runtime's dtype on the CPU, else converted (and moved) into a copy.
    /// </summary>
    protected static Tensor Mapped(byte* data, ScalarType stored, long[] shape, TorchRuntime runtime)
    {
        torch.InitializeDeviceType(runtime.Device.type);
        IntPtr handle;
        fixed (long* sizes = shape)
        {
            handle = THSTensor_new((IntPtr)data, &KeepMapping, sizes, shape.Length,
                (sbyte)stored, (sbyte)runtime.DType, (int)runtime.Device.type, runtime.Device.index, 0);
        }
        if (handle == IntPtr.Zero) torch.CheckForErrors();
        return Tensor.UnsafeCreateTensor(handle);
    }

    /// <summary>The mapping belongs to the file, which outlives the model, so libtorch must not free it.</summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void KeepMapping(IntPtr data) { }

    // TorchSharp 0.107's exported from_blob factory (src/Native/LibTorchSharp/THSTensorFactories.cpp): converts to
    // dtype and moves to the device when they differ from the source, and wraps the memory as is when they don't.
    [DllImport("LibTorchSharp")]
    private static extern IntPtr THSTensor_new(IntPtr data, delegate* unmanaged[Cdecl]<IntPtr, void> deleter,
        long* sizes, int ndim, sbyte scalarType, sbyte dtype, int deviceType, int deviceIndex, byte requiresGrad);
}
