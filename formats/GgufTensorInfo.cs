namespace Tune.Formats;

/// <summary>
/// One tensor of a GGUF file. <paramref name="Dimensions"/> are ggml's ne (ne[0] innermost, the PyTorch shape
/// reversed); <paramref name="Offset"/> is relative to the start of the data section.
/// </summary>
public sealed record GgufTensorInfo(string Name, GgmlType Type, long[] Dimensions, long Offset, long ByteLength)
{
    public long ElementCount => Shapes.ElementCount(Dimensions);
}
