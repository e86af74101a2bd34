using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.ExceptionServices;
using Tune.Formats;

namespace Tune.Quantize;

/// <summary>
/// Encodes tensors row by row: from the memory-mapped input GGUF (<see cref="Quantize"/>) or from float32 rows
/// a converter produces (<see cref="Encode"/>). The rows are cut into chunks that <see cref="Threads"/> workers
/// encode straight into one output buffer (reused from call to call, so at most one tensor's output is in memory),
/// each worker also decoding what it wrote to measure the error when asked to.
/// </summary>
public sealed unsafe class TensorQuantizer(int threads, bool measureError = true)
{
    // Enough chunks per thread that an unlucky slow chunk does not leave the other threads idle at the end.
    private const int ChunksPerThread = 4;

    private byte[] _output = [];

    public int Threads { get; } = threads >= 1 ? threads : throw new ArgumentOutOfRangeException(nameof(threads), threads, "at least one thread");

    /// <summary>The error sums of one tensor: Σ (x − q(x))² and Σ x², in double.</summary>
    public readonly record struct ErrorSums(double Error, double Signal)
    {
        public double Relative => Signal > 0 ? Math.Sqrt(Error / Signal) : Error > 0 ? double.PositiveInfinity : 0;
    }

    /// <summary>Encodes <paramref name="t"/> of <paramref name="input"/> as <paramref name="type"/>; the bytes stay valid until the next call.</summary>
    /// <exception cref="NonFiniteWeightException">naming the tensor and the element.</exception>
    public ReadOnlySpan<byte> Quantize(GgufFile input, GgufTensorInfo t, GgmlType type, out ErrorSums error, CancellationToken cancellation)
    {
        int rowLength = checked((int)t.Dimensions[0]);
        try
        {
            return EncodeRows(input.DataPointer(t), t.Type, t.ElementCount / rowLength, rowLength, type, out error, cancellation);
        }
        catch (NonFiniteWeightException e) { throw e.InTensor(t.Name, 0); }
        catch (NotSupportedException e) { throw new NotSupportedException($"{input.Path}: tensor \"{t.Name}\" {e.Message}", e); }
    }

    /// <summary>Encodes whole rows of <paramref name="rowLength"/> floats as <paramref name="type"/>; the bytes stay valid until the next call.</summary>
    /// <exception cref="NonFiniteWeightException">naming the element's index in <paramref name="values"/>.</exception>
    public ReadOnlySpan<byte> Encode(ReadOnlySpan<float> values, int rowLength, GgmlType type, out ErrorSums error, CancellationToken cancellation)
    {
        if (values.Length % rowLength != 0) throw new ArgumentException($"{values.Length} values are not whole rows of {rowLength}", nameof(values));
        fixed (float* source = values)
            return EncodeRows((byte*)source, GgmlType.F32, values.Length / rowLength, rowLength, type, out error, cancellation);
    }

    private ReadOnlySpan<byte> EncodeRows(byte* source, GgmlType inputType, long rows, int rowLength, GgmlType type, out ErrorSums error,
        CancellationToken cancellation)
    {
        long rowInBytes = inputType.ByteCount([rowLength]), rowOutBytes = type.ByteCount([rowLength]);
        long total = rows * rowOutBytes;
        if (total > Array.MaxLength) throw new NotSupportedException($"would take {total} bytes as {type.Name()}, more than one buffer holds");
        if (_output.Length < total) _output = new byte[total];

        byte[] output = _output;
        int chunks = (int)Math.Min(rows, Threads == 1 ? 1 : Threads * ChunksPerThread);
        var sums = new ErrorSums[chunks];
        var failures = new Exception?[chunks];
        void Chunk(int c)
        {
            long first = rows * c / chunks, end = rows * (c + 1) / chunks;
            try
            {
                sums[c] = EncodeChunk(source, output, first, end, rowLength, rowInBytes, rowOutBytes, inputType, type, cancellation);
            }
            catch (Exception e) { failures[c] = e; }
        }
        if (chunks == 1) Chunk(0);
        else Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = Threads }, Chunk);

        // The earliest failure, so the error names the first bad weight whatever the thread count.
        if (failures.FirstOrDefault(f => f is not null) is { } failure) ExceptionDispatchInfo.Throw(failure);
        error = new ErrorSums(sums.Sum(s => s.Error), sums.Sum(s => s.Signal));
        return output.AsSpan(0, (int)total);
    }

    private ErrorSums EncodeChunk(byte* source, byte[] output, long first, long end, int rowLength, long rowInBytes, long rowOutBytes,
        GgmlType inputType, GgmlType type, CancellationToken cancellation)
    {
        float[] x = ArrayPool<float>.Shared.Rent(rowLength), y = ArrayPool<float>.Shared.Rent(rowLength);
        try
        {
            double error = 0, signal = 0;
            Span<float> row = x.AsSpan(0, rowLength), decoded = y.AsSpan(0, rowLength);
            for (long r = first; r < end; r++)
            {
                cancellation.ThrowIfCancellationRequested();
                RowEncoding.Decode(inputType, new ReadOnlySpan<byte>(source + r * rowInBytes, (int)rowInBytes), row);
                Span<byte> blocks = output.AsSpan(checked((int)(r * rowOutBytes)), (int)rowOutBytes);
                try { RowEncoding.Encode(type, row, blocks); }
                catch (NonFiniteWeightException e) { throw new NonFiniteWeightException(r * rowLength + e.Index, e.Value, inner: e); }
                if (!measureError) continue;
                RowEncoding.Decode(type, blocks, decoded);
                float distance = TensorPrimitives.Distance(row, decoded);
                error += (double)distance * distance;
                signal += TensorPrimitives.SumOfSquares(row);
            }
            return new ErrorSums(error, signal);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(x);
            ArrayPool<float>.Shared.Return(y);
        }
    }
}
