using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Tune.Model.Distributed;

/// <summary>Raw access to a tensor's elements for the communication libraries, and the checks every backend shares.</summary>
internal static class TensorMemory
{
    /// <summary>
    /// The address of the tensor's first element, storage offset included (Storage.data_ptr() ignores the offset, so
    /// it is wrong for views); a CUDA tensor gives a device pointer. Zero for an empty tensor.
    /// </summary>
    public static IntPtr Address(Tensor tensor)
    {
        if (!tensor.is_contiguous()) throw new ArgumentException("collectives exchange contiguous tensors only; call contiguous() first");
        return tensor.numel() == 0 ? IntPtr.Zero : THSTensor_data(tensor.Handle);
    }

    /// <summary>Bytes of one row (one slice along dim 0).</summary>
    public static long RowBytes(Tensor tensor) =>
        tensor.shape.Skip(1).Aggregate(1L, (a, b) => a * b) * tensor.element_size();

    public static void CheckExchange(Tensor send, long[] sendRows, Tensor recv, long[] recvRows, int size)
    {
        if (sendRows.Length != size || recvRows.Length != size)
            throw new ArgumentException($"row counts must have one entry per rank ({size}); got {sendRows.Length} and {recvRows.Length}");
        if (send.dtype != recv.dtype || !send.shape.Skip(1).SequenceEqual(recv.shape.Skip(1)) || send.dim() == 0)
            throw new ArgumentException($"send [{string.Join(", ", send.shape)}] {send.dtype} and receive [{string.Join(", ", recv.shape)}] " +
                                        $"{recv.dtype} must share dtype and row shape");
        if (sendRows.Sum() != send.shape[0] || recvRows.Sum() != recv.shape[0])
            throw new ArgumentException($"row counts sum to {sendRows.Sum()} and {recvRows.Sum()}, but the tensors have " +
                                        $"{send.shape[0]} and {recv.shape[0]} rows");
        if (sendRows.Any(r => r < 0) || recvRows.Any(r => r < 0)) throw new ArgumentException("row counts must not be negative");
    }

    public static void CheckReducible(Tensor tensor)
    {
        if (tensor.dtype is not (ScalarType.Float32 or ScalarType.Float64 or ScalarType.Int64))
            throw new ArgumentException($"all-reduce takes float32, float64 or int64 tensors, not {tensor.dtype} " +
                                        "(sum bf16 gradients in float32)");
    }

    // TorchSharp's own accessor for Tensor.bytes (src/Native/LibTorchSharp/THSTensor.cpp: tensor->data_ptr()).
    [DllImport("LibTorchSharp")]
    private static extern IntPtr THSTensor_data(IntPtr handle);
}
