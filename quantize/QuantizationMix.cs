using Tune.Formats;

namespace Tune.Quantize;

/// <summary>
/// A llama.cpp quantisation mixture (llama_ftype): the <c>general.file_type</c> id it writes and the type of every
/// weight no rule of <see cref="TypePolicy"/> moves (llama_ftype_get_default_type).
/// </summary>
public sealed record QuantizationMix(string Name, uint FileType, GgmlType DefaultType)
{
    public static QuantizationMix Q8_0 { get; } = new("q8_0", 7, GgmlType.Q8_0);
    public static QuantizationMix Q4_0 { get; } = new("q4_0", 2, GgmlType.Q4_0);
    public static QuantizationMix Q4_K_S { get; } = new("q4_k_s", 14, GgmlType.Q4_K);
    public static QuantizationMix Q4_K_M { get; } = new("q4_k_m", 15, GgmlType.Q4_K);

    public static IReadOnlyList<QuantizationMix> All { get; } = [Q8_0, Q4_0, Q4_K_S, Q4_K_M];

    public static QuantizationMix Parse(string name) =>
        All.FirstOrDefault(m => m.Name == name.Trim().ToLowerInvariant())
        ?? throw new ArgumentException($"--type {name}: expected one of {string.Join(", ", All.Select(m => m.Name))}");

    public override string ToString() => Name;
}
