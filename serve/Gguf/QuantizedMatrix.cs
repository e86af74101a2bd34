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
/// vec_dot type and takes llama.cpp's integer dot products (<see cref="IntegerDot"/>), output rows split across
/// threads; embedding lookups dequantise only the rows asked for. A matrix made for products, of a type with an
/// interleaved kernel (q4_K, q5_0, q8_0 on AVX2) and a multiple of eight rows, copies its rows once into that
/// kernel's interleaved groups (the same bytes reordered; 2.8 % more for q4_K, whose scales are unpacked) and
/// drops the mapped pages it read, as llama.cpp repacks such tensors at load; others multiply from the mapping,
/// several tokens per unpacked weight block. The mapping must outlive the matrix.
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
    private readonly int _blocks;

    // The rows as IntegerDot.GroupRows-row groups of _blocks group blocks each, pinned; null where not interleaved.
    private readonly byte[]? _groups;
    private readonly long _groupBytes;

    /// <param name="forProducts">the matrix multiplies activations (and may interleave its rows for that);
    /// otherwise it is only read by <see cref="Rows"/> and <see cref="Dequantize"/>.</param>
    public QuantizedMatrix(byte* rows, GgmlType type, long outFeatures, long inFeatures, int threads, bool forProducts)
    {
        _codec = BlockCodecs.For(type);
        if (inFeatures % _codec.BlockSize != 0)
            throw new InvalidDataException($"rows of {inFeatures} are not whole {type.Name()} blocks of {_codec.BlockSize}");
        _rows = (nint)rows;
        _rowBytes = checked((int)(inFeatures / _codec.BlockSize * _codec.BytesPerBlock));
        _dot = IntegerDot.For(type) ?? throw new NotSupportedException($"no integer dot product for {type.Name()}");
        _threads = threads;
        _blocks = (int)(inFeatures / _codec.BlockSize);
        OutFeatures = outFeatures;
        InFeatures = inFeatures;
        Type = type;
        _groupBytes = (long)_blocks * _dot.GroupBlockBytes;
        long interleavedBytes = outFeatures / IntegerDot.GroupRows * _groupBytes;
        if (forProducts && _groupBytes > 0 && outFeatures % IntegerDot.GroupRows == 0 && interleavedBytes <= Array.MaxLength)
            _groups = Interleave(interleavedBytes);
    }

    public GgmlType Type { get; }
    public long OutFeatures { get; }
    public long InFeatures { get; }

    public Tensor Multiply(Tensor x)
    {
        if (x.device_type != DeviceType.CPU) throw new ArgumentException("quantised GGUF weights multiply on the CPU only");
        long[] inputShape = x.shape;
        if (inputShape[^1] != InFeatures) throw new ArgumentException($"input rows of {inputShape[^1]}, weight rows of {InFeatures}");
        // A float32 contiguous input is read where it is, and the output made in its final shape: a decode step
        // makes some 150 of these products, most of them small, and every libtorch op costs microseconds.
        Tensor? converted = x.dtype == ScalarType.Float32 ? null : x.to(ScalarType.Float32);
        Tensor? copied = (converted ?? x).is_contiguous() ? null : (converted ?? x).contiguous();
        try
        {
            Tensor output = empty([.. inputShape[..^1], OutFeatures], ScalarType.Float32);
            int tokens = checked((int)(x.numel() / InFeatures));
            if (tokens > 0) Products(TensorData(copied ?? converted ?? x), tokens, TensorData(output));
            if (converted is null) return output;
            using (output) return output.to(x.dtype);
        }
        finally
        {
            copied?.Dispose();
            converted?.Dispose();
        }
    }

    private void Products(nint input, int tokens, nint output)
    {
        int inFeatures = (int)InFeatures, outFeatures = (int)OutFeatures;
        int activationRow = _dot.ActivationRowBytes(inFeatures);
        byte[] quantised = ArrayPool<byte>.Shared.Rent(tokens * activationRow);
        try
        {
            var activations = new ReadOnlySpan<float>((void*)input, tokens * inFeatures);
            for (int t = 0; t < tokens; t++)
                _dot.QuantizeActivations(activations.Slice(t * inFeatures, inFeatures), quantised.AsSpan(t * activationRow, activationRow));
            // Work is split by output row, or by group of rows where they are interleaved.
            int units = _groups != null ? outFeatures / IntegerDot.GroupRows : outFeatures;
            long work = (long)tokens * outFeatures * inFeatures;
            int chunks = work <= SerialWork || _threads == 1 ? 1 : Math.Min(units, _threads * 4);
            fixed (byte* q = quantised)
            fixed (byte* groups = _groups)
            {
                if (chunks == 1) Chunk(groups, 0, units, q, activationRow, tokens, (float*)output);
                else SplitAcrossThreads((nint)groups, units, chunks, (nint)q, activationRow, tokens, output);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(quantised);
        }
    }

    private void SplitAcrossThreads(nint groups, int units, int chunks, nint activations, int activationRow, int tokens, nint output)
    {
        int perChunk = (units + chunks - 1) / chunks;
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = _threads }, c =>
            Chunk((byte*)groups, c * perChunk, Math.Min(units, (c + 1) * perChunk), (byte*)activations, activationRow, tokens, (float*)output));
    }

    private void Chunk(byte* groups, int first, int last, byte* activations, int activationRow, int tokens, float* y)
    {
        if (groups != null) GroupProducts(groups, first, last, activations, activationRow, tokens, y);
        else RowProducts(first, last, activations, activationRow, tokens, y);
    }

    // Tokens inside groups: a group's blocks stay in L1 while every token meets them, so the weights stream from
    // memory once per product however many tokens there are; four at a time where the kernel takes four.
    private void GroupProducts(byte* groups, int first, int last, byte* activations, int activationRow, int tokens, float* y)
    {
        int outFeatures = (int)OutFeatures;
        for (int g = first; g < last; g++)
        {
            byte* group = groups + g * _groupBytes;
            float* results = y + (long)g * IntegerDot.GroupRows;
            int t = 0;
            if (_dot.DotsFourTokensAGroup)
                for (; t + 4 <= tokens; t += 4)
                    _dot.DotGroupFour(group, _blocks, activations + (long)t * activationRow, activationRow, results + (long)t * outFeatures, outFeatures);
            for (; t < tokens; t++)
                _dot.DotGroup(group, _blocks, activations + (long)t * activationRow, results + (long)t * outFeatures);
        }
    }

    // Rows outside token tiles, for the same reason.
    private void RowProducts(int first, int last, byte* activations, int activationRow, int tokens, float* y)
    {
        int outFeatures = (int)OutFeatures;
        for (int o = first; o < last; o++)
        {
            byte* row = (byte*)_rows + (long)o * _rowBytes;
            for (int t = 0; t < tokens; t += IntegerDot.MaxTokens)
                _dot.Dot(row, _blocks, activations + (long)t * activationRow, activationRow, Math.Min(IntegerDot.MaxTokens, tokens - t),
                    y + (long)t * outFeatures + o, outFeatures, KernelPaths.Best);
        }
    }

    private byte[] Interleave(long bytes)
    {
        byte[] groups = GC.AllocateUninitializedArray<byte>((int)bytes, pinned: true);
        int count = (int)(OutFeatures / IntegerDot.GroupRows);
        fixed (byte* first = groups)
        {
            nint target = (nint)first;
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = _threads }, g =>
                _dot.Interleave((byte*)_rows + (long)g * IntegerDot.GroupRows * _rowBytes, _rowBytes, _blocks, (byte*)target + g * _groupBytes));
        }
        MappedPages.Release((byte*)_rows, OutFeatures * _rowBytes);
        return groups;
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

