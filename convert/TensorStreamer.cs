using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Tune.Formats;
using Tune.Quantize;

namespace Tune.Convert;

/// <summary>
/// Produces one planned tensor's bytes from the memory-mapped checkpoint into the GGUF sink, piece by piece: rows
/// are read straight from the mapping, converted through float32 only when the type changes or rows are rescaled
/// (else copied as they are), and their source pages are released behind them. Memory is two chunk buffers.
/// </summary>
internal sealed unsafe class TensorStreamer(CheckpointDirectory checkpoint, LlamaCppCompatibility compat, Action<long> written, CancellationToken cancellation)
{
    private const int ChunkElements = 1 << 20;
    private const int RawChunkBytes = 1 << 24;

    private float[] _floats = new float[ChunkElements];
    private byte[] _encoded = new byte[ChunkElements * sizeof(float)];
    private float[] _transposed = [];

    private DeepSeekV2Config Config => checkpoint.Config;

    public void Write(PlannedTensor t, GgufTensorSink sink)
    {
        try
        {
            Stream(t, sink);
        }
        catch (NonFiniteWeightException e)
        {
            throw new InvalidDataException($"tensor \"{t.Name}\": {e.Message}", e);
        }
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
                for (int h = 0; h < heads; h++) TransposedKeyRows(Source(t.Sources[0]), h, t.Type, sink);
                break;
            case TensorTransform.Zeros:
                Zeros(t.ByteLength, sink);
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
            Emit(values, type, sink);
            SourcePages.Release(chunk, (long)n * itemSize);
        }
    }

    /// <summary>Head <paramref name="h"/>'s key half of kv_b, [Dn, L], written as its transpose [L, Dn].</summary>
    private void TransposedKeyRows((SafetensorsFile File, TensorInfo Info) kvB, int h, GgmlType type, GgufTensorSink sink)
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
        Emit(transposed, type, sink);
        SourcePages.Release(start, (long)n * itemSize);
    }

    private void Zeros(long bytes, GgufTensorSink sink)
    {
        // Zero bits are zero in every output type, Q8_0 included (d = 0, q = 0).
        Array.Clear(_encoded);
        for (long done = 0; done < bytes; done += _encoded.Length)
        {
            cancellation.ThrowIfCancellationRequested();
            int n = (int)Math.Min(_encoded.Length, bytes - done);
            sink.Write(_encoded.AsSpan(0, n));
            written(n);
        }
    }

    private void Emit(ReadOnlySpan<float> values, GgmlType type, GgufTensorSink sink)
    {
        Span<byte> bytes = _encoded;
        int n = type switch
        {
            GgmlType.F32 => Copy(MemoryMarshal.AsBytes(values), bytes),
            GgmlType.F16 => Half(values, bytes),
            GgmlType.BF16 => Bf16(values, bytes),
            GgmlType.Q8_0 => Q8_0(values, bytes),
            _ => throw new ArgumentException($"cannot encode {type.Name()}"),
        };
        sink.Write(bytes[..n]);
        written(n);
    }

    /// <summary>ggml's reference Q8_0 (quantize/Q8_0Codec, byte-identical to ggml_quantize_chunk).</summary>
    private static int Q8_0(ReadOnlySpan<float> values, Span<byte> to)
    {
        int n = values.Length / Q8_0Codec.BlockSize * Q8_0Codec.BytesPerBlock;
        Q8_0Codec.Instance.Quantize(values, to[..n]);
        return n;
    }

    private static int Copy(ReadOnlySpan<byte> from, Span<byte> to)
    {
        from.CopyTo(to);
        return from.Length;
    }

    private static int Half(ReadOnlySpan<float> values, Span<byte> bytes)
    {
        TensorPrimitives.ConvertToHalf(values, MemoryMarshal.Cast<byte, Half>(bytes[..(values.Length * 2)]));
        return values.Length * 2;
    }

    private static int Bf16(ReadOnlySpan<float> values, Span<byte> bytes)
    {
        FloatBits.FromFloat32(values, DType.BF16, bytes[..(values.Length * 2)]);
        return values.Length * 2;
    }

    private void Reserve(int elements)
    {
        if (_floats.Length >= elements) return;
        _floats = new float[elements];
        _encoded = new byte[elements * sizeof(float)];
    }
}
