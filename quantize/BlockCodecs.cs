using Tune.Formats;

namespace Tune.Quantize;

/// <summary>The codec of each <see cref="GgmlType"/> Tune can write. Block geometry of every type is in <see cref="GgmlTypes"/>.</summary>
public static class BlockCodecs
{
    /// <summary>The types with a codec, in ggml id order.</summary>
    public static IReadOnlyList<GgmlType> Types { get; } =
        [GgmlType.Q4_0, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K];

    /// <summary>The codec that writes <paramref name="type"/>, or null where Tune has none.</summary>
    public static IBlockCodec? TryGet(GgmlType type) => type switch
    {
        GgmlType.Q8_0 => Q8_0Codec.Instance,
        GgmlType.Q4_0 => Q4_0Codec.Instance,
        GgmlType.Q5_0 => Q5_0Codec.Instance,
        GgmlType.Q5_1 => Q5_1Codec.Instance,
        GgmlType.Q4_K => Q4KCodec.Instance,
        GgmlType.Q5_K => Q5KCodec.Instance,
        GgmlType.Q6_K => Q6KCodec.Instance,
        _ => null,
    };

    /// <summary>The codec that writes <paramref name="type"/>.</summary>
    public static IBlockCodec For(GgmlType type) => TryGet(type) ?? throw new NotSupportedException(
        $"Tune has no block codec for {type.Name()}; it writes {string.Join(", ", Types.Select(t => t.Name()))}");
}
