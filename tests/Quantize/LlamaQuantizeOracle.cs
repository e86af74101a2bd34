using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Tune.Quantize;

namespace Tune.Tests.Quantize;

/// <summary>
/// llama.cpp's own <c>llama_model_quantize</c> from the prebuilt libllama that oracle/setup.sh installs from npm's
/// node-llama-cpp, with the default params but the mixture and thread count (what `llama-quantize IN OUT TYPE N` does).
/// Loaded by absolute path and called through function pointers, like <see cref="GgmlOracle"/>.
/// </summary>
internal static unsafe class LlamaQuantizeOracle
{
    private static readonly string Directory = Path.GetDirectoryName(GgmlOracle.LibraryPath)!;

    // include/llama.h, llama_model_quantize_params (x86-64: six bools, then padding to the pointers).
    [StructLayout(LayoutKind.Sequential)]
    private struct QuantizeParams
    {
        public int NThread;
        public int FileType;
        public int OutputTensorType;
        public int TokenEmbeddingType;
        public byte AllowRequantize, QuantizeOutputTensor, OnlyCopy, Pure, KeepSplit, DryRun;
        public nint Imatrix, KvOverrides, TensorTypeOverrides, PruneLayers;
        public nuint MaxBufSize;
    }

    private static readonly Lazy<nint> Library = new(() =>
    {
        string path = Path.Combine(Directory, "libllama.v0.5.0.so");
        if (!File.Exists(path)) Assert.Fail($"{path} is missing: the llama.cpp oracle is not installed; run oracle/setup.sh");
        NativeLibrary.Load(GgmlOracle.LibraryPath);
        nint library = NativeLibrary.Load(path);
        ((delegate* unmanaged<delegate* unmanaged<int, byte*, void*, void>, void*, void>)NativeLibrary.GetExport(library, "llama_log_set"))(&Silent, null);
        ((delegate* unmanaged<void>)NativeLibrary.GetExport(library, "llama_backend_init"))();
        return library;
    });

    /// <summary>Runs llama_model_quantize; fails the test with llama.cpp's status when it does not return 0.</summary>
    public static void Quantize(string input, string output, QuantizationMix mix, int threads)
    {
        nint library = Library.Value;
        QuantizeParams p = ((delegate* unmanaged<QuantizeParams>)NativeLibrary.GetExport(library, "llama_model_quantize_default_params"))();
        p.FileType = (int)mix.FileType;
        p.NThread = threads;
        var quantize = (delegate* unmanaged<byte*, byte*, QuantizeParams*, uint>)NativeLibrary.GetExport(library, "llama_model_quantize");
        byte[] inputPath = [.. System.Text.Encoding.UTF8.GetBytes(input), 0], outputPath = [.. System.Text.Encoding.UTF8.GetBytes(output), 0];
        uint status;
        fixed (byte* i = inputPath)
        fixed (byte* o = outputPath)
            status = quantize(i, o, &p);
        Assert.True(status == 0, $"llama_model_quantize({input}, {mix.Name}) returned {status}");
    }

    // llama.cpp logs every tensor it quantises; the test output needs none of it.
    [UnmanagedCallersOnly]
    private static void Silent(int level, byte* text, void* user) { }
}
