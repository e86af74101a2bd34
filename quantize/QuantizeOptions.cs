namespace Tune.Quantize;

/// <summary>What `tune quantize` was asked to do.</summary>
public sealed record QuantizeOptions(string InputPath, string OutputPath, QuantizationMix Mix)
{
    /// <summary>Threads quantising the rows of each tensor.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;
}

/// <summary>Where a quantisation is: tensors done, and input bytes read of the totals.</summary>
public sealed record QuantizeProgress(int TensorsDone, int TensorCount, long BytesDone, long ByteCount);
