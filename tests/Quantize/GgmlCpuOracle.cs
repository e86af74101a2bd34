using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using Tune.Formats;

namespace Tune.Tests.Quantize;

/// <summary>
/// ggml's CPU kernels: the prebuilt AVX2 build (libggml-cpu-haswell.so, the variant llama.cpp picks on an AVX2 CPU
/// without AVX-512) next to <see cref="GgmlOracle"/>'s libggml-base.so. Its activation quantisers
/// (<c>quantize_row_q8_0/q8_1/q8_K</c>) and <c>ggml_vec_dot_*</c> are exported by name.
/// </summary>
internal static unsafe class GgmlCpuOracle
{
    private static readonly string LibraryPath = Path.Combine(Path.GetDirectoryName(GgmlOracle.LibraryPath)!, "libggml-cpu-haswell.so");

    private static readonly Lazy<nint> Library = new(() =>
    {
        if (!File.Exists(LibraryPath))
            Assert.Fail($"{LibraryPath} is missing: the ggml oracle is not installed; run oracle/setup.sh");
        nint library = NativeLibrary.Load(LibraryPath);
        // Fills the fp16 → fp32 table that the kernels' GGML_CPU_FP16_TO_FP32 reads.
        ((delegate* unmanaged<void>)NativeLibrary.GetExport(library, "ggml_cpu_init"))();
        return library;
    });

    /// <summary>Whether this CPU runs the AVX2 build (it needs AVX2, FMA and F16C).</summary>
    public static bool Runs => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>ggml's <c>quantize_row_*</c> of the vec_dot type <paramref name="type"/> (Q8_0, Q8_1 or Q8_K).</summary>
    public static byte[] QuantizeRow(GgmlType type, ReadOnlySpan<float> x)
    {
        var quantize = (delegate* unmanaged<float*, byte*, long, void>)Export($"quantize_row_{type.Name()}");
        byte[] blocks = new byte[type.ByteCount([x.Length])];
        fixed (float* source = x)
        fixed (byte* target = blocks)
            quantize(source, target, x.Length);
        return blocks;
    }

    /// <summary><c>ggml_vec_dot_{weights}_{activations}(n, &amp;s, 0, w, 0, a, 0, 1)</c>.</summary>
    public static float VecDot(GgmlType weights, GgmlType activations, ReadOnlySpan<byte> w, ReadOnlySpan<byte> a, int n)
    {
        var dot = (delegate* unmanaged<int, float*, nuint, byte*, nuint, byte*, nuint, int, void>)Export(
            $"ggml_vec_dot_{weights.Name()}_{activations.Name()}");
        float s;
        fixed (byte* pw = w)
        fixed (byte* pa = a)
            dot(n, &s, 0, pw, 0, pa, 0, 1);
        return s;
    }

    private static nint Export(string name) => NativeLibrary.GetExport(Library.Value, name);
}
