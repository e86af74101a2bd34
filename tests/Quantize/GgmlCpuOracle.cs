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

    /// <summary>
    /// llama.cpp's AVX2 GEMV over q4_K rows repacked eight at a time (<c>ggml_gemv_q4_K_8x8_q8_K</c>, exported as the
    /// template <c>ggml::cpu::repack::gemv&lt;block_q4_K, 8, 8, GGML_TYPE_Q8_K&gt;</c>): <paramref name="rows"/> results for one
    /// token's Q8_K activations, the weights in <see cref="RepackQ4K"/>'s block_q4_Kx8 layout.
    /// </summary>
    public static float[] GemvQ4K8x8(ReadOnlySpan<byte> repacked, ReadOnlySpan<byte> activations, int n, int rows)
    {
        var gemv = (delegate* unmanaged<int, float*, nuint, byte*, byte*, int, int, void>)Export(
            "_ZN4ggml3cpu6repack4gemvI10block_q4_KLl8ELl8EL9ggml_type15EEEviPfmPKvS7_ii");
        float[] results = new float[rows];
        fixed (float* s = results)
        fixed (byte* w = repacked)
        fixed (byte* a = activations)
            gemv(n, s, 0, w, a, 1, rows);
        return results;
    }

    /// <summary>
    /// q4_K rows (a multiple of eight) in llama.cpp's block_q4_Kx8 layout (repack.cpp make_block_q4_Kx8 with an
    /// interleave of 8): per super-block column the eight d, the eight dmin, 96 bytes of scales and mins regrouped by
    /// sub-block, then the nibbles eight bytes of a row at a time, rows in turn.
    /// </summary>
    public static byte[] RepackQ4K(ReadOnlySpan<byte> rowBlocks, int rows, int blocks)
    {
        const int BlockBytes = 144, Rows = 8;
        byte[] repacked = new byte[rowBlocks.Length];
        Span<byte> s = stackalloc byte[Rows], m = stackalloc byte[Rows];
        int o = 0;
        for (int r0 = 0; r0 < rows; r0 += Rows)
            for (int x = 0; x < blocks; x++)
            {
                int Block(int i) => ((r0 + i) * blocks + x) * BlockBytes;
                for (int i = 0; i < Rows; i++) rowBlocks.Slice(Block(i), 2).CopyTo(repacked.AsSpan(o + 2 * i));
                for (int i = 0; i < Rows; i++) rowBlocks.Slice(Block(i) + 2, 2).CopyTo(repacked.AsSpan(o + 16 + 2 * i));
                for (int half = 0; half < 2; half++)
                    for (int i = 0; i < 4; i++)
                    {
                        for (int j = 0; j < Rows; j++)
                        {
                            ReadOnlySpan<byte> sc = rowBlocks.Slice(Block(j) + 4, 12);
                            s[j] = half == 0 ? (byte)(sc[i] & 63) : (byte)((sc[i] & 192) >> 2 | sc[i + 8] & 15);
                            m[j] = half == 0 ? (byte)(sc[i + 4] & 63) : (byte)((sc[i + 4] & 192) >> 2 | (sc[i + 8] & 240) >> 4);
                        }
                        Span<byte> target = repacked.AsSpan(o + 32 + 48 * half + 12 * i, 12);
                        for (int k = 0; k < 4; k++)
                        {
                            target[k] = (byte)((s[k] & 63) + ((s[k + 4] & 48) << 2));
                            target[4 + k] = (byte)((m[k] & 63) + ((m[k + 4] & 48) << 2));
                            target[8 + k] = (byte)((s[k + 4] & 15) + ((m[k + 4] & 15) << 4));
                        }
                    }
                for (int i = 0; i < 128; i++) rowBlocks.Slice(Block(i % Rows) + 16 + i / Rows * 8, 8).CopyTo(repacked.AsSpan(o + 128 + 8 * i));
                o += Rows * BlockBytes;
            }
        return repacked;
    }

    private static nint Export(string name) => NativeLibrary.GetExport(Library.Value, name);
}
