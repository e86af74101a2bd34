namespace Tune.Formats;

internal static class Shapes
{
    /// <summary>Product of the dimensions; throws <see cref="OverflowException"/> rather than wrapping.</summary>
    public static long ElementCount(ReadOnlySpan<long> shape)
    {
        long count = 1;
        foreach (long dim in shape) count = checked(count * dim);
        return count;
    }

    public static string Format(ReadOnlySpan<long> shape) => $"[{string.Join(", ", shape.ToArray())}]";
}
