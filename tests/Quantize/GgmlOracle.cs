using System.Runtime.InteropServices;
using Tune.Formats;

namespace Tune.Tests.Quantize;

/// <summary>
/// The real ggml: the prebuilt libggml-base.so that oracle/setup.sh installs from npm's node-llama-cpp. Loaded by
/// absolute path and called through its exports as function pointers (a DllImport resolver is per assembly, and
/// other oracles share this test assembly).
/// </summary>
internal static unsafe class GgmlOracle
{
    public static string LibraryPath { get; } = Path.Combine(RepoPaths.Root, "oracle", "node_modules", "@node-llama-cpp",
        "linux-x64", "bins", "linux-x64", "libggml-base.so");

    private static readonly Lazy<nint> Library = new(() =>
    {
        if (!File.Exists(LibraryPath))
            Assert.Fail($"{LibraryPath} is missing: the ggml oracle is not installed; run oracle/setup.sh");
        return NativeLibrary.Load(LibraryPath);
    });

    private static nint Export(string name) => NativeLibrary.GetExport(Library.Value, name);

    /// <summary><c>ggml_quantize_chunk(type, src, dst, start, nrows, n_per_row, imatrix = NULL)</c> into <paramref name="dst"/>.</summary>
    public static void QuantizeChunk(GgmlType type, ReadOnlySpan<float> src, Span<byte> dst, long startRow, long rows, long perRow)
    {
        if (src.Length < (startRow + rows) * perRow || dst.Length < (startRow + rows) * RowSize(type, perRow))
            throw new ArgumentException("the buffers are smaller than the rows to quantise");
        var quantizeChunk = (delegate* unmanaged<int, float*, void*, long, long, long, float*, nuint>)Export("ggml_quantize_chunk");
        fixed (float* s = src)
        fixed (byte* d = dst)
        {
            nuint written = quantizeChunk((int)type, s, d, startRow * perRow, rows, perRow, null);
            Assert.Equal((ulong)(rows * RowSize(type, perRow)), (ulong)written);
        }
    }

    public static byte[] Quantize(GgmlType type, ReadOnlySpan<float> rows, int perRow)
    {
        byte[] dst = new byte[rows.Length / perRow * RowSize(type, perRow)];
        QuantizeChunk(type, rows, dst, 0, rows.Length / perRow, perRow);
        return dst;
    }

    /// <summary>ggml's <c>dequantize_row_*</c> (the type traits' to_float) of <paramref name="blocks"/>.</summary>
    public static float[] Dequantize(GgmlType type, ReadOnlySpan<byte> blocks, int elements)
    {
        string name = type switch
        {
            GgmlType.Q8_0 => "dequantize_row_q8_0",
            GgmlType.Q4_0 => "dequantize_row_q4_0",
            GgmlType.Q5_0 => "dequantize_row_q5_0",
            GgmlType.Q5_1 => "dequantize_row_q5_1",
            GgmlType.Q4_K => "dequantize_row_q4_K",
            GgmlType.Q5_K => "dequantize_row_q5_K",
            GgmlType.Q6_K => "dequantize_row_q6_K",
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, "no dequantiser bound"),
        };
        if (blocks.Length != RowSize(type, elements)) throw new ArgumentException("blocks do not hold the elements");
        var dequantize = (delegate* unmanaged<byte*, float*, long, void>)Export(name);
        float[] y = new float[elements];
        fixed (byte* b = blocks)
        fixed (float* p = y)
            dequantize(b, p, elements);
        return y;
    }

    public static ushort Fp32ToFp16(float value) => ((delegate* unmanaged<float, ushort>)Export("ggml_fp32_to_fp16"))(value);

    public static float Fp16ToFp32(ushort value) => ((delegate* unmanaged<ushort, float>)Export("ggml_fp16_to_fp32"))(value);

    public static long BlockSize(GgmlType type) => ((delegate* unmanaged<int, long>)Export("ggml_blck_size"))((int)type);

    public static long TypeSize(GgmlType type) => (long)((delegate* unmanaged<int, nuint>)Export("ggml_type_size"))((int)type);

    public static int RowSize(GgmlType type, long elements) =>
        checked((int)((delegate* unmanaged<int, long, nuint>)Export("ggml_row_size"))((int)type, elements));
}
