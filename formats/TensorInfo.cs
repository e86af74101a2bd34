namespace Tune.Formats;

/// <summary>One tensor of a safetensors file. <paramref name="DataOffset"/> is absolute, from the start of the file.</summary>
public sealed record TensorInfo(string Name, DType DType, long[] Shape, long DataOffset, long ByteLength)
{
    public long ElementCount => Shapes.ElementCount(Shape);
}
