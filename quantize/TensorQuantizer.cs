using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.ExceptionServices;
using Tune.Formats;

namespace Tune.Quantize;

/// <summary>
/// Quantises one tensor at a time from the memory-mapped input: its rows are cut into chunks that
/// <see cref="Threads"/> workers encode straight into one output buffer (reused from tensor to tensor, so at most
/// one tensor's output is in memory), each worker also decoding what it wrote to measure the error.
/// </summary>
internal sealed unsafe class TensorQuantizer(int threads)
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
        long rows = t.ElementCount / rowLength;
        long rowInBytes = t.Type.ByteCount([rowLength]), rowOutBytes = type.ByteCount([rowLength]);
        long total = rows * rowOutBytes;
        if (total > Array.MaxLength)
            throw new NotSupportedException($"{input.Path}: tensor \"{t.Name}\" would take {total} bytes as {type.Name()}, more than one buffer holds");
        if (_output.Length < total) _output = new byte[total];

        byte* source = input.DataPointer(t);
        byte[] output = _output;
        int chunks = (int)Math.Min(rows, Threads == 1 ? 1 : Threads * ChunksPerThread);
        var sums = new ErrorSums[chunks];
        var failures = new Exception?[chunks];
        void Chunk(int c)
        {
            long first = rows * c / chunks, end = rows * (c + 1) / chunks;
            try
            {
                sums[c] = EncodeRows(source, output, first, end, rowLength, rowInBytes, rowOutBytes, t.Type, type, cancellation);
            }
            catch (Exception e) { failures[c] = e; }
        }
        if (chunks == 1) Chunk(0);
        else Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = Threads }, Chunk);

        // The earliest failure, so the error names the first bad weight whatever the thread count.
        if (failures.FirstOrDefault(f => f is not null) is { } failure)
        {
            if (failure is NonFiniteWeightException nonFinite) throw nonFinite.InTensor(t.Name, 0);
            ExceptionDispatchInfo.Throw(failure);
        }
        error = new ErrorSums(sums.Sum(s => s.Error), sums.Sum(s => s.Signal));
        return output.AsSpan(0, (int)total);
    }

    private static ErrorSums EncodeRows(byte* source, byte[] output, long first, long end, int rowLength, long rowInBytes, long rowOutBytes,
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
