using Tune.Formats;

namespace Tune.Convert;

/// <summary>What `tune convert` was asked to do.</summary>
public sealed record ConvertOptions(string ModelDirectory, string OutputPath)
{
    /// <summary>F32, F16, BF16 or Q8_0 for the weight matrices; null keeps the checkpoint's own type (lossless).</summary>
    public GgmlType? Type { get; init; }

    /// <summary>general.name; null takes the model directory's name, as llama.cpp's converter does without a model card.</summary>
    public string? Name { get; init; }

    public KvLayout Layout { get; init; } = KvLayout.Split;
}

/// <summary>Where a conversion is: tensors and bytes written of the totals.</summary>
public sealed record ConvertProgress(int TensorsDone, int TensorCount, long BytesDone, long ByteCount);
