using System.Diagnostics;
using Tune.Formats;

namespace Tune.Quantize;

/// <summary>
/// An f32/f16/bf16 GGUF → quantised GGUF, as llama_model_quantize writes it. <see cref="Prepare"/> opens the input,
/// checks it and picks every tensor's type (<see cref="TypePolicy"/>), so bad input fails before a byte is written;
/// <see cref="Write"/> then streams tensor by tensor, in llama-quantize's order (<see cref="TensorOrder"/>), into a
/// temporary file that is renamed to the output name only when complete.
/// </summary>
public sealed class GgufQuantization : IDisposable
{
    private readonly GgufFile _input;
    private readonly IReadOnlyList<GgufTensorInfo> _inputTensors;

    private GgufQuantization(QuantizeOptions options, GgufFile input, IReadOnlyList<GgufTensorInfo> inputTensors,
        IReadOnlyList<TensorChoice> tensors, IReadOnlyList<KeyValuePair<string, GgufValue>> metadata)
    {
        Options = options;
        _input = input;
        _inputTensors = inputTensors;
        Tensors = tensors;
        Metadata = metadata;
    }

    public QuantizeOptions Options { get; }

    /// <summary>In output order.</summary>
    public IReadOnlyList<TensorChoice> Tensors { get; }

    public IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata { get; }

    public long InputByteCount => _inputTensors.Sum(t => t.ByteLength);

    public long ByteCount => Tensors.Sum(t => t.Type.ByteCount(t.Dimensions));

    public static GgufQuantization Prepare(QuantizeOptions options)
    {
        if (options.Threads < 1) throw new ArgumentException($"--threads {options.Threads}: at least 1");
        GgufFile input = GgufFile.Open(options.InputPath);
        try
        {
            GgufTensorInfo[] ordered = input.Tensors.OrderBy(t => t.Name, TensorOrder.Instance).ToArray();
            IReadOnlyList<TensorChoice> tensors;
            try { tensors = TypePolicy.Choose(ordered, options.Mix, input.Metadata); }
            catch (InvalidDataException e) { throw new InvalidDataException($"{options.InputPath}: {e.Message}", e); }
            foreach (TensorChoice t in tensors.Where(t => !t.IsCopied && !RowEncoding.IsFloat(t.InputType)))
                throw new InvalidDataException(
                    $"{options.InputPath}: tensor \"{t.Name}\" is {t.InputType.Name()}; requantising is not supported, quantise from f32, f16 or bf16");
            return new GgufQuantization(options, input, ordered, tensors, QuantizedMetadata.For(input.Metadata, options.Mix));
        }
        catch
        {
            input.Dispose();
            throw;
        }
    }

    /// <summary>Writes the file; on any failure or cancellation nothing is left under the output name.</summary>
    /// <exception cref="InvalidDataException">a weight to quantise is NaN or infinite (the inner <see cref="NonFiniteWeightException"/> names the tensor).</exception>
    public QuantizeReport Write(Action<QuantizeProgress>? progress = null, CancellationToken cancellation = default)
    {
        string? directory = Path.GetDirectoryName(Path.GetFullPath(Options.OutputPath));
        if (directory is not null && !Directory.Exists(directory))
            throw new DirectoryNotFoundException($"--out {Options.OutputPath}: the directory {directory} does not exist");
        var clock = Stopwatch.StartNew();
        var quantizer = new TensorQuantizer(Options.Threads);
        var reports = new TensorReport[Tensors.Count];
        long total = InputByteCount, done = 0;
        int tensorsDone = 0;
        var sources = Tensors.Select((t, i) => new GgufTensorSource(t.Name, t.Type, t.Dimensions, sink =>
        {
            GgufTensorInfo input = _inputTensors[i];
            reports[i] = t.IsCopied ? Copy(input, t, sink, cancellation) : Quantize(quantizer, input, t, sink, cancellation);
            done += input.ByteLength;
            progress?.Invoke(new QuantizeProgress(++tensorsDone, Tensors.Count, done, total));
        })).ToArray();
        GgufWriter.Write(Options.OutputPath, Metadata, sources, cancellation);

        long weights = Tensors.Sum(t => t.ElementCount);
        return new QuantizeReport(Options.InputPath, Options.OutputPath, Options.Mix.Name, new FileInfo(Options.OutputPath).Length,
            clock.Elapsed.TotalSeconds, 8.0 * ByteCount / weights, reports);
    }

    public void Dispose() => _input.Dispose();

    private TensorReport Quantize(TensorQuantizer quantizer, GgufTensorInfo input, TensorChoice t, GgufTensorSink sink, CancellationToken cancellation)
    {
        ReadOnlySpan<byte> bytes;
        TensorQuantizer.ErrorSums error;
        try { bytes = quantizer.Quantize(_input, input, t.Type, out error, cancellation); }
        catch (NonFiniteWeightException e) { throw new InvalidDataException($"{_input.Path}: {e.Message}", e); }
        sink.Write(bytes);
        return Report(t, bytes.Length, error.Relative);
    }

    private unsafe TensorReport Copy(GgufTensorInfo input, TensorChoice t, GgufTensorSink sink, CancellationToken cancellation)
    {
        const int Piece = 1 << 24;
        byte* start = _input.DataPointer(input);
        for (long offset = 0; offset < input.ByteLength; offset += Piece)
        {
            cancellation.ThrowIfCancellationRequested();
            sink.Write(new ReadOnlySpan<byte>(start + offset, (int)Math.Min(Piece, input.ByteLength - offset)));
        }
        return Report(t, input.ByteLength, 0);
    }

    private static TensorReport Report(TensorChoice t, long bytes, double relativeError) =>
        new(t.Name, t.InputType.Name(), t.Type.Name(), t.Dimensions, bytes, 8.0 * bytes / t.ElementCount, relativeError);
}
