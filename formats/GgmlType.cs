namespace Tune.Formats;

/// <summary>ggml tensor element types, with the ids GGUF stores (ggml.h). Ids 4, 5, 31–33 and 36–38 were removed upstream.</summary>
public enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,
    NVFP4 = 40,
    Q1_0 = 41,
    Q2_0 = 42,
}

/// <summary>Block geometry of each <see cref="GgmlType"/>: a row of ne[0] elements is ne[0]/BlockSize blocks of BlockBytes.</summary>
public static class GgmlTypes
{
    private static readonly Dictionary<GgmlType, (int BlockSize, int BlockBytes)> Blocks = new()
    {
        [GgmlType.F32] = (1, 4), [GgmlType.F16] = (1, 2), [GgmlType.BF16] = (1, 2), [GgmlType.F64] = (1, 8),
        [GgmlType.I8] = (1, 1), [GgmlType.I16] = (1, 2), [GgmlType.I32] = (1, 4), [GgmlType.I64] = (1, 8),
        [GgmlType.Q4_0] = (32, 18), [GgmlType.Q4_1] = (32, 20), [GgmlType.Q5_0] = (32, 22), [GgmlType.Q5_1] = (32, 24),
        [GgmlType.Q8_0] = (32, 34), [GgmlType.Q8_1] = (32, 36), [GgmlType.IQ4_NL] = (32, 18), [GgmlType.MXFP4] = (32, 17),
        [GgmlType.NVFP4] = (64, 36), [GgmlType.Q1_0] = (128, 18), [GgmlType.Q2_0] = (64, 18),
        [GgmlType.Q2_K] = (256, 84), [GgmlType.Q3_K] = (256, 110), [GgmlType.Q4_K] = (256, 144), [GgmlType.Q5_K] = (256, 176),
        [GgmlType.Q6_K] = (256, 210), [GgmlType.Q8_K] = (256, 292), [GgmlType.IQ2_XXS] = (256, 66), [GgmlType.IQ2_XS] = (256, 74),
        [GgmlType.IQ2_S] = (256, 82), [GgmlType.IQ3_XXS] = (256, 98), [GgmlType.IQ3_S] = (256, 110), [GgmlType.IQ1_S] = (256, 50),
        [GgmlType.IQ1_M] = (256, 56), [GgmlType.IQ4_XS] = (256, 136), [GgmlType.TQ1_0] = (256, 54), [GgmlType.TQ2_0] = (256, 66),
    };

    public static bool IsKnown(GgmlType type) => Blocks.ContainsKey(type);

    public static int BlockSize(this GgmlType type) => Geometry(type).BlockSize;

    public static int BlockBytes(this GgmlType type) => Geometry(type).BlockBytes;

    /// <summary>The name llama.cpp prints (f32, q8_0, q4_K, …).</summary>
    public static string Name(this GgmlType type)
    {
        string name = type.ToString().ToLowerInvariant();
        return name.EndsWith("_k", StringComparison.Ordinal) ? name[..^1] + "K" : name;
    }

    /// <summary>Bytes of a tensor with dimensions <paramref name="ne"/> (ggml order); throws when ne[0] is not whole blocks or the size overflows.</summary>
    public static long ByteCount(this GgmlType type, ReadOnlySpan<long> ne)
    {
        (int blockSize, int blockBytes) = Geometry(type);
        long rowElements = ne.Length == 0 ? 1 : ne[0];
        if (rowElements % blockSize != 0)
            throw new ArgumentException($"{rowElements} elements per row are not whole {type.Name()} blocks of {blockSize}");
        long bytes = checked(rowElements / blockSize * blockBytes);
        for (int i = 1; i < ne.Length; i++) bytes = checked(bytes * ne[i]);
        return bytes;
    }

    private static (int BlockSize, int BlockBytes) Geometry(GgmlType type) =>
        Blocks.TryGetValue(type, out var geometry) ? geometry : throw new ArgumentOutOfRangeException(nameof(type), type, "not a ggml type");
}
