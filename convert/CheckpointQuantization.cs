using System.Diagnostics;
using Tune.Formats;
using Tune.Quantize;

namespace Tune.Convert;

/// <summary>
/// A Hugging Face checkpoint → quantised GGUF in one pass, with no intermediate file: the f32 conversion is planned
/// (<see cref="HfToGgufConversion"/>), and its tensors are then typed and ordered as llama_model_quantize would
/// type and order that f32 file (<see cref="TypePolicy"/>, <see cref="TensorOrder"/>), with its metadata. Each tensor
/// is produced as float32 rows, a chunk at a time, and encoded on the way out, so the file is byte for byte the one
/// `tune convert --type f32` followed by `tune quantize` writes.
/// </summary>
public sealed class CheckpointQuantization : IDisposable
{
    private readonly HfToGgufConversion _conversion;
    private readonly IReadOnlyList<PlannedTensor> _planned;

    private CheckpointQuantization(QuantizeOptions options, HfToGgufConversion conversion, IReadOnlyList<PlannedTensor> planned,
        IReadOnlyList<TensorChoice> tensors, IReadOnlyList<KeyValuePair<string, GgufValue>> metadata)
    {
        Options = options;
        _conversion = conversion;
        _planned = planned;
        Tensors = tensors;
        Metadata = metadata;
    }

    public QuantizeOptions Options { get; }

    /// <summary>In output order; the input type is the f32 of the planned conversion.</summary>
    public IReadOnlyList<TensorChoice> Tensors { get; }

    public IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata { get; }

    public IReadOnlyList<string> Notes => _conversion.Notes;

    public IReadOnlyList<string> Warnings => _conversion.Warnings;

    public long ByteCount => _planned.Sum(t => t.ByteLength);

    public static CheckpointQuantization Prepare(QuantizeOptions options)
    {
        if (options.Threads < 1) throw new ArgumentException($"--threads {options.Threads}: at least 1");
        var conversion = HfToGgufConversion.Prepare(new ConvertOptions(options.InputPath, options.OutputPath) { Type = GgmlType.F32 });
        try
        {
            PlannedTensor[] ordered = conversion.Tensors.OrderBy(t => t.Name, TensorOrder.Instance).ToArray();
            GgufTensorInfo[] asF32File = ordered.Select(t => new GgufTensorInfo(t.Name, t.Type, t.Dimensions, 0, t.ByteLength)).ToArray();
            IReadOnlyList<TensorChoice> tensors = TypePolicy.Choose(asF32File, options.Mix, conversion.Metadata);
            PlannedTensor[] retyped = ordered.Zip(tensors, (t, choice) => t with { Type = choice.Type }).ToArray();
            return new CheckpointQuantization(options, conversion, retyped, tensors, QuantizedMetadata.For(conversion.Metadata, options.Mix));
        }
        catch
        {
            conversion.Dispose();
            throw;
        }
    }

    /// <summary>Writes the file; on any failure or cancellation nothing is left under the output name.</summary>
    /// <exception cref="InvalidDataException">a weight to quantise is NaN or infinite (the inner <see cref="NonFiniteWeightException"/> names the tensor).</exception>
    public QuantizeReport Write(Action<ConvertProgress>? progress = null, CancellationToken cancellation = default)
    {
        var clock = Stopwatch.StartNew();
        TensorQuantizer.ErrorSums[] errors = _conversion.Write(_planned, Metadata, new TensorQuantizer(Options.Threads), progress, cancellation);
        var reports = Tensors.Select((t, i) => new TensorReport(t.Name, t.InputType.Name(), t.Type.Name(), t.Dimensions, _planned[i].ByteLength,
            8.0 * _planned[i].ByteLength / t.ElementCount, t.IsCopied ? 0 : errors[i].Relative)).ToArray();
        long weights = Tensors.Sum(t => t.ElementCount);
        return new QuantizeReport(Options.InputPath, Options.OutputPath, Options.Mix.Name, new FileInfo(Options.OutputPath).Length,
            clock.Elapsed.TotalSeconds, 8.0 * ByteCount / weights, reports);
    }

    public void Dispose() => _conversion.Dispose();
}
