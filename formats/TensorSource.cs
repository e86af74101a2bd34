namespace Tune.Formats;

/// <summary>
/// A tensor to be written. <paramref name="Fill"/> is called once, when the writer reaches the tensor, and must write
/// exactly <see cref="ByteLength"/> bytes of little-endian data; this keeps only one tensor in memory at a time.
/// </summary>
public sealed record TensorSource(string Name, DType DType, long[] Shape, Action<Span<byte>> Fill)
{
    public long ElementCount => Shapes.ElementCount(Shape);

    public long ByteLength => checked(ElementCount * DType.ItemSize());
}
