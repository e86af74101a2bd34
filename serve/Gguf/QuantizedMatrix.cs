using System.Buffers;
using System.Runtime.InteropServices;
using TorchSharp;
using Tune.Formats;
using Tune.Model;
using Tune.Quantize;
using static TorchSharp.torch;

namespace Tune.Serve.Gguf;

/// <summary>
/// A weight [out, in] as the block-quantised rows of a memory-mapped GGUF tensor (or one expert's slice of a stacked
/// expert tensor), never dequantised as a whole: x·Wᵀ quantises each token's activations once to the weight type's
/// vec_dot type and takes llama.cpp's integer dot products (<see cref="IntegerDot"/>), several tokens per unpacked
/// weight block, output rows split across threads; embedding lookups dequantise only the rows asked for. The mapping
/// must outlive the matrix.
/// </summary>
internal sealed unsafe class QuantizedMatrix : IWeightMatrix
{
    // Below this many multiply-adds a matrix-vector product is faster on the calling thread than handed out.
    private const long SerialWork = 1 << 16;

    private readonly nint _rows;
    private readonly int _rowBytes;
    private readonly IBlockCodec _codec;
    private readonly IntegerDot _dot;
    private readonly int _threads;

    public QuantizedMatrix(byte* rows, GgmlType type, long outFeatures, long inFeatures, int threads)
    {
        _codec = BlockCodecs.For(type);
        if (inFeatures % _codec.BlockSize != 0)
            throw new InvalidDataException($"rows of {inFeatures} are not whole {type.Name()} blocks of {_codec.BlockSize}");
        _rows = (nint)rows;
        _rowBytes = checked((int)(inFeatures / _codec.BlockSize * _codec.BytesPerBlock));
        _dot = IntegerDot.For(type) ?? throw new NotSupportedException($"no integer dot product for {type.Name()}");
        _threads = threads;
        OutFeatures = outFeatures;
        InFeatures = inFeatures;
        Type = type;
    }

    public GgmlType Type { get; }
    public long OutFeatures { get; }
    public long InFeatures { get; }

    public Tensor Multiply(Tensor x)
    {
        if (x.device_type != DeviceType.CPU) throw new ArgumentException("quantised GGUF weights multiply on the CPU only");
        if (x.shape[^1] != InFeatures) throw new ArgumentException($"input rows of {x.shape[^1]}, weight rows of {InFeatures}");
        using var scope = NewDisposeScope();
        int inFeatures = (int)InFeatures, outFeatures = (int)OutFeatures;
        Tensor input = x.to(ScalarType.Float32).contiguous();
        int tokens = checked((int)(input.numel() / inFeatures));
        long[] shape = [.. x.shape[..^1], OutFeatures];
        Tensor output = empty([tokens, OutFeatures], ScalarType.Float32);
        if (tokens == 0) return output.view(shape).to(x.dtype).MoveToOuterDisposeScope();

        int activationRow = _dot.ActivationRowBytes(inFeatures);
        byte[] quantised = ArrayPool<byte>.Shared.Rent(tokens * activationRow);
        try
        {
            var activations = new ReadOnlySpan<float>((void*)TensorData(input), tokens * inFeatures);
            for (int t = 0; t < tokens; t++)
                _dot.QuantizeActivations(activations.Slice(t * inFeatures, inFeatures), quantised.AsSpan(t * activationRow, activationRow));
            nint y = TensorData(output);
            long work = (long)tokens * outFeatures * inFeatures;
            int chunks = work <= SerialWork || _threads == 1 ? 1 : Math.Min(outFeatures, _threads * 4);
            int perChunk = (outFeatures + chunks - 1) / chunks;
            int blocks = inFeatures / _dot.BlockSize;
            fixed (byte* firstActivation = quantised)
            {
                nint q = (nint)firstActivation;
                // Rows outside token tiles: a row's blocks stay in L1 while every tile of activations meets them, so
                // the weights stream from memory once per product however many tokens there are.
                void Chunk(int c)
                {
                    int first = c * perChunk, last = Math.Min(outFeatures, first + perChunk);
                    for (int o = first; o < last; o++)
                    {
                        byte* row = (byte*)_rows + (long)o * _rowBytes;
                        for (int t = 0; t < tokens; t += IntegerDot.MaxTokens)
                            _dot.Dot(row, blocks, (byte*)q + (long)t * activationRow, activationRow, Math.Min(IntegerDot.MaxTokens, tokens - t),
                                (float*)y + (long)t * outFeatures + o, outFeatures, KernelPaths.Best);
                    }
                }
                if (chunks == 1) Chunk(0);
                else Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = _threads }, Chunk);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(quantised);
        }
        return output.view(shape).to(x.dtype).MoveToOuterDisposeScope();
    }

    public Tensor Rows(Tensor ids)
    {
        long[] wanted = ids.to(ScalarType.Int64).cpu().data<long>().ToArray();
        Tensor output = empty([wanted.Length, InFeatures], ScalarType.Float32);
        var rows = new Span<float>((void*)TensorData(output), checked((int)(wanted.Length * InFeatures)));
        for (int i = 0; i < wanted.Length; i++)
        {
            if (wanted[i] < 0 || wanted[i] >= OutFeatures) throw new ArgumentOutOfRangeException(nameof(ids), $"id {wanted[i]} is outside the {OutFeatures} rows");
            _codec.Dequantize(new ReadOnlySpan<byte>((byte*)_rows + wanted[i] * _rowBytes, _rowBytes), rows.Slice(i * (int)InFeatures, (int)InFeatures));
        }
        return output;
    }

    /// <summary>Every row dequantised, [out, in] float32 (small tensors the graph needs dense, such as kv_b).</summary>
    public float[] Dequantize()
    {
        var values = new float[OutFeatures * InFeatures];
        for (long o = 0; o < OutFeatures; o++)
            _codec.Dequantize(new ReadOnlySpan<byte>((byte*)_rows + o * _rowBytes, _rowBytes), values.AsSpan((int)(o * InFeatures), (int)InFeatures));
        return values;
    }

    // The first element of a contiguous CPU tensor (TorchSharp's own accessor behind Tensor.bytes).
    private static nint TensorData(Tensor t) => THSTensor_data(t.Handle);

    [DllImport("LibTorchSharp")]
    private static extern nint THSTensor_data(nint handle);
}
