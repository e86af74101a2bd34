using Tune.Formats;
using Tune.Quantize;

namespace Tune.Tests.Quantize;

/// <summary>Each codec with its path-selecting internals, so tests run the scalar and vector kernels alike.</summary>
internal static class Codecs
{
    public delegate void QuantizeOnPath(ReadOnlySpan<float> row, Span<byte> blocks, KernelPath path);

    public delegate float DotOnPath(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x, KernelPath path);

    /// <param name="QuantizeOnPath">null where quantisation has only the scalar form.</param>
    public sealed record Entry(IBlockCodec Codec, QuantizeOnPath? QuantizeOnPath, DotOnPath DotOnPath);

    public static Entry For(GgmlType type) => type switch
    {
        GgmlType.Q8_0 => new(Q8_0Codec.Instance, Q8_0Codec.Quantize, Q8_0Codec.Dot),
        GgmlType.Q4_0 => new(Q4_0Codec.Instance, null, Q4_0Codec.Dot),
        GgmlType.Q5_0 => new(Q5_0Codec.Instance, null, Q5_0Codec.Dot),
        GgmlType.Q5_1 => new(Q5_1Codec.Instance, null, Q5_1Codec.Dot),
        GgmlType.Q4_K => new(Q4KCodec.Instance, Q4KCodec.Quantize, Q4KCodec.Dot),
        GgmlType.Q5_K => new(Q5KCodec.Instance, Q5KCodec.Quantize, Q5KCodec.Dot),
        GgmlType.Q6_K => new(Q6KCodec.Instance, Q6KCodec.Quantize, Q6KCodec.Dot),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "no codec"),
    };

    public static TheoryData<GgmlType> Types => new(BlockCodecs.Types);

    /// <summary>The kernel paths this CPU runs (the scalar one always).</summary>
    public static IEnumerable<KernelPath> AvailablePaths =>
        Enum.GetValues<KernelPath>().Where(KernelPaths.IsAvailable);
}
