using Tune.Formats;

namespace Tune.Convert;

/// <summary>The output types `tune convert` writes and the <c>general.file_type</c> (llama_ftype) each one implies.</summary>
public static class OutputTypes
{
    private static readonly Dictionary<GgmlType, uint> FileTypes = new()
    {
        [GgmlType.F32] = 0,
        [GgmlType.F16] = 1,
        [GgmlType.Q8_0] = 7,
        [GgmlType.BF16] = 32,
    };

    public static IEnumerable<GgmlType> Supported => FileTypes.Keys;

    public static uint FileType(GgmlType type) =>
        FileTypes.TryGetValue(type, out uint fileType)
            ? fileType
            : throw new ArgumentException($"--type {type.Name()}: expected one of {string.Join(", ", Supported.Select(t => t.Name()))}");

    public static GgmlType Parse(string name)
    {
        string wanted = name.Trim().ToLowerInvariant();
        foreach (GgmlType type in Supported)
            if (type.Name() == wanted) return type;
        throw new ArgumentException($"--type {name}: expected one of {string.Join(", ", Supported.Select(t => t.Name()))}");
    }

    /// <summary>The output type that keeps a checkpoint's values exactly.</summary>
    public static GgmlType Lossless(DType source) => source switch
    {
        DType.F32 => GgmlType.F32,
        DType.F16 => GgmlType.F16,
        DType.BF16 => GgmlType.BF16,
        _ => throw new ArgumentException($"{source} weights cannot be converted; expected F32, F16 or BF16"),
    };
}
