using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tune.Quantize;

/// <summary>
/// Which implementation of a kernel runs. Every vector kernel has a scalar twin that gives the same bytes (quantise)
/// or the same value up to rounding (dot); tests run both, whatever the CPU.
/// </summary>
internal enum KernelPath
{
    Scalar,

    /// <summary>Vector256 arithmetic (AVX2 on x64, where the dot kernels also use AVX2 widening loads).</summary>
    Vector256,
}

internal static class KernelPaths
{
    /// <summary>The fastest path this process can run.</summary>
    public static KernelPath Best { get; } = IsAvailable(KernelPath.Vector256) ? KernelPath.Vector256 : KernelPath.Scalar;

    public static bool IsAvailable(KernelPath path) => path switch
    {
        KernelPath.Scalar => true,
        KernelPath.Vector256 => Vector256.IsHardwareAccelerated && Avx2.IsSupported,
        _ => false,
    };
}
