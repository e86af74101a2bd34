namespace Tune.Formats;

/// <summary>Element types of checkpoint tensors, as safetensors names them.</summary>
public enum DType { F32, F16, BF16, I32, I64, U8 }

public static class DTypes
{
    public static int ItemSize(this DType t) => t switch
    {
        DType.F32 => 4,
        DType.F16 => 2,
        DType.BF16 => 2,
        DType.I32 => 4,
        DType.I64 => 8,
        DType.U8 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "not a DType"),
    };

    public static string SafetensorsName(this DType t) => t switch
    {
        DType.F32 => "F32",
        DType.F16 => "F16",
        DType.BF16 => "BF16",
        DType.I32 => "I32",
        DType.I64 => "I64",
        DType.U8 => "U8",
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "not a DType"),
    };

    /// <summary>Exact, case-sensitive match: the safetensors format spells its dtypes in upper case.</summary>
    public static bool TryParseSafetensors(string name, out DType t)
    {
        foreach (DType candidate in Enum.GetValues<DType>())
        {
            if (candidate.SafetensorsName() == name)
            {
                t = candidate;
                return true;
            }
        }
        t = default;
        return false;
    }
}
