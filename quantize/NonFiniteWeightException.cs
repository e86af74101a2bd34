namespace Tune.Quantize;

/// <summary>
/// A weight to quantise is NaN or infinite. ggml would write garbage blocks for it, so codecs refuse the row;
/// the caller knows the tensor and adds it with <see cref="InTensor"/>.
/// </summary>
public sealed class NonFiniteWeightException : Exception
{
    public NonFiniteWeightException(long index, float value, string? tensorName = null, Exception? inner = null)
        : base(Describe(index, value, tensorName), inner)
    {
        Index = index;
        Value = value;
        TensorName = tensorName;
    }

    /// <summary>Position of the weight: in the row given to the codec, or in the tensor once named.</summary>
    public long Index { get; }

    public float Value { get; }

    public string? TensorName { get; }

    /// <summary>
    /// The same failure located in a tensor: <paramref name="rowStart"/> is the tensor element index of the row's
    /// first weight, so <see cref="Index"/> becomes a tensor element index.
    /// </summary>
    public NonFiniteWeightException InTensor(string tensorName, long rowStart) =>
        new(rowStart + Index, Value, tensorName, this);

    private static string Describe(long index, float value, string? tensorName)
    {
        string where = tensorName is null ? $"element {index} of the row" : $"element {index} of tensor '{tensorName}'";
        return $"{where} is {value}; only finite weights can be quantised";
    }
}
