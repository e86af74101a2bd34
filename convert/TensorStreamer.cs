using System.Numerics.Tensors;
using Tune.Formats;
using Tune.Quantize;

namespace Tune.Convert;

/// <summary>
/// Produces one planned tensor's bytes from the memory-mapped checkpoint into the GGUF sink, piece by piece: rows
/// are read straight from the mapping, converted through float32 only when the type changes or rows are rescaled
/// (else copied as they are), encoded in any GGUF type by <paramref name="encoder"/> (block types included, so a
/// checkpoint can be quantised in the same pass), and their source pages are released behind them. Memory is a
/// float chunk and the encoder's output buffer of one chunk.
/// </summary>
internal sealed unsafe class TensorStreamer(CheckpointDirectory checkpoint, LlamaCppCompatibility compat, TensorQuantizer encoder,
    Action<long> written, CancellationToken cancellation)
{
    private const int ChunkElements = 1 << 20;
    private const int RawChunkBytes = 1 << 24;

    private float[] _floats = new float[ChunkElements];
    private float[] _transposed = [];

    // The tensor being written, the elements emitted so far and the encoding error so far.
    private PlannedTensor _tensor = null!;
    private int _rowLength;
    private long _emitted;
    private TensorQuantizer.ErrorSums _error;

    private DeepSeekV2Config Config => checkpoint.Config;

    /// <summary>Writes <paramref name="t"/>; returns the error of its encoding against the checkpoint's values (zero when copied).</summary>
    /// <exception cref="InvalidDataException">a weight to quantise is NaN or infinite (the inner <see cref="NonFiniteWeightException"/> names tensor and element).</exception>
    public TensorQuantizer.ErrorSums Write(PlannedTensor t, GgufTensorSink sink)
    {
        (_tensor, _rowLength, _emitted, _error) = (t, checked((int)t.Dimensions[0]), 0, default);
        try
        {
            Stream(t, sink);
        }
        catch (NonFiniteWeightException e)
        {
            throw new InvalidDataException(e.Message, e);
        }
        return _error;
    }

    private void Stream(PlannedTensor t, GgufTensorSink sink)
    {
        int row = checked((int)t.Dimensions[0]);
        int heads = Config.NumAttentionHeads, nope = Config.QkNopeHeadDim, value = Config.VHeadDim, rank = Config.KvLoraRank;
        switch (t.Transform)
        {
            case TensorTransform.Copy:
            case TensorTransform.StackExperts:
                foreach (var source in t.Sources.Select(Source)) Rows(source, 0, source.Info.ElementCount / row, row, t.Type, sink, null);
                break;
            case TensorTransform.QueryRows:
                Rows(Source(t.Sources[0]), 0, t.Dimensions[1], row, t.Type, sink, QueryRowScale);
                break;
            case TensorTransform.ValueHalf:
                for (int h = 0; h < heads; h++) Rows(Source(t.Sources[0]), (long)h * (nope + value) + nope, value, rank, t.Type, sink, null);
                break;
            case TensorTransform.KeyHalfTransposed:
                for (int h = 0; h < heads; h++) TransposedKeyRows(Source(t.Sources[0]), h, sink);
                break;
            case TensorTransform.Zeros:
                Zeros(t.Dimensions.Aggregate(1L, (n, d) => n * d), sink);
                break;
            default:
                throw new InvalidOperationException($"tensor \"{t.Name}\": no streamer for {t.Transform}");
        }
    }

    private (SafetensorsFile File, TensorInfo Info) Source(string name) => checkpoint.Locate(name);

    private double QueryRowScale(long row) => row % Config.QHeadDim < Config.QkNopeHeadDim ? compat.QueryScale.Nope : compat.QueryScale.Rope;

    /// <summary>rows [first, first+count) of length <paramref name="length"/> of a source tensor, in order.</summary>
    private void Rows((SafetensorsFile File, TensorInfo Info) source, long first, long count, int length, GgmlType type,
        GgufTensorSink sink, Func<long, double>? scale)
    {
        int itemSize = source.Info.DType.ItemSize();
        byte* start = source.File.DataPointer(source.Info) + first * length * itemSize;
        if (scale is null && OutputTypes.Lossless(source.Info.DType) == type)
        {
            long total = count * length * itemSize;
            for (long done = 0; done < total; done += RawChunkBytes)
            {
                cancellation.ThrowIfCancellationRequested();
                int n = (int)Math.Min(RawChunkBytes, total - done);
                sink.Write(new ReadOnlySpan<byte>(start + done, n));
                SourcePages.Release(start + done, n);
                written(n);
            }
            return;
        }

        long rowsPerChunk = Math.Max(1, ChunkElements / length);
        Reserve(checked((int)Math.Min(rowsPerChunk, count) * length));
        for (long r = 0; r < count; r += rowsPerChunk)
        {
            cancellation.ThrowIfCancellationRequested();
            int rows = (int)Math.Min(rowsPerChunk, count - r), n = rows * length;
            byte* chunk = start + r * length * itemSize;
            Span<float> values = _floats.AsSpan(0, n);
            FloatBits.ToFloat32(new ReadOnlySpan<byte>(chunk, n * itemSize), source.Info.DType, values);
            if (scale is not null)
                for (int i = 0; i < rows; i++) TensorPrimitives.Multiply(values.Slice(i * length, length), (float)scale(first + r + i), values.Slice(i * length, length));
            Emit(values, sink);
            SourcePages.Release(chunk, (long)n * itemSize);
        }
    }

    /// <summary>Head <paramref name="h"/>'s key half of kv_b, [Dn, L], written as its transpose [L, Dn].</summary>
    private void TransposedKeyRows((SafetensorsFile File, TensorInfo Info) kvB, int h, GgufTensorSink sink)
    {
        cancellation.ThrowIfCancellationRequested();
        int nope = Config.QkNopeHeadDim, rank = Config.KvLoraRank, n = nope * rank, itemSize = kvB.Info.DType.ItemSize();
        Reserve(n);
        if (_transposed.Length < n) _transposed = new float[n];
        byte* start = kvB.File.DataPointer(kvB.Info) + (long)h * (nope + Config.VHeadDim) * rank * itemSize;
        Span<float> key = _floats.AsSpan(0, n);
        FloatBits.ToFloat32(new ReadOnlySpan<byte>(start, n * itemSize), kvB.Info.DType, key);
        Span<float> transposed = _transposed.AsSpan(0, n);
        for (int j = 0; j < nope; j++)
            for (int r = 0; r < rank; r++)
                transposed[r * nope + j] = key[j * rank + r];
        Emit(transposed, sink);
        SourcePages.Release(start, (long)n * itemSize);
    }

    /// <summary>
    /// Zero weights, encoded like any others: zero bits are not every type's zero (Q4_0 stores q + 8, so a zero
    /// block is d = 0 with nibbles 8), and the bytes must be what quantising the zeros writes.
    /// </summary>
    private void Zeros(long elements, GgufTensorSink sink)
    {
        long rowsPerChunk = Math.Max(1, ChunkElements / _rowLength);
        Reserve(checked((int)Math.Min(rowsPerChunk * _rowLength, elements)));
        for (long done = 0; done < elements; done += rowsPerChunk * _rowLength)
        {
            cancellation.ThrowIfCancellationRequested();
            Span<float> zeros = _floats.AsSpan(0, (int)Math.Min(rowsPerChunk * _rowLength, elements - done));
            zeros.Clear();
            Emit(zeros, sink);
        }
    }

    /// <summary>Encodes whole rows of the current tensor in its type and writes them.</summary>
    private void Emit(ReadOnlySpan<float> values, GgufTensorSink sink)
    {
        ReadOnlySpan<byte> bytes;
        TensorQuantizer.ErrorSums error;
        try { bytes = encoder.Encode(values, _rowLength, _tensor.Type, out error, cancellation); }
        catch (NonFiniteWeightException e) { throw e.InTensor(_tensor.Name, _emitted); }
        sink.Write(bytes);
        written(bytes.Length);
        _emitted += values.Length;
        _error = new TensorQuantizer.ErrorSums(_error.Error + error.Error, _error.Signal + error.Signal);
    }

    private void Reserve(int elements)
    {
        if (_floats.Length < elements) _floats = new float[elements];
    }
}
