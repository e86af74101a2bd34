using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Tune.Formats;

namespace Tune.Quantize;

/// <summary>Argument checks shared by the codecs: whole blocks, matching lengths, finite weights.</summary>
internal static class RowChecks
{
    private const uint ExponentMask = 0x7F800000;

    /// <returns>The number of blocks.</returns>
    public static int RequireBlocks(int elements, int byteCount, int blockSize, int bytesPerBlock, GgmlType type)
    {
        if (elements % blockSize != 0)
            throw new ArgumentException($"a {type.Name()} row holds a multiple of {blockSize} weights; {elements} is not");
        int blocks = elements / blockSize;
        if (byteCount != (long)blocks * bytesPerBlock)
            throw new ArgumentException(
                $"{elements} weights of {type.Name()} take {(long)blocks * bytesPerBlock} bytes ({blocks} blocks of {bytesPerBlock}), not {byteCount}");
        return blocks;
    }

    /// <exception cref="NonFiniteWeightException">at the first NaN or infinity.</exception>
    public static void RequireFinite(ReadOnlySpan<float> row, KernelPath path)
    {
        ref uint bits = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(row));
        nuint n = (nuint)row.Length, i = 0;
        bool allFinite = true;
        if (path == KernelPath.Vector256)
        {
            Vector256<uint> mask = Vector256.Create(ExponentMask), any = Vector256<uint>.Zero;
            for (; i + (nuint)Vector256<uint>.Count <= n; i += (nuint)Vector256<uint>.Count)
                any |= Vector256.Equals(Vector256.LoadUnsafe(ref bits, i) & mask, mask);
            allFinite = any == Vector256<uint>.Zero;
        }
        for (; i < n && allFinite; i++)
            allFinite = (Unsafe.Add(ref bits, i) & ExponentMask) != ExponentMask;
        if (allFinite) return;
        for (int j = 0; j < row.Length; j++)
            if (!float.IsFinite(row[j])) throw new NonFiniteWeightException(j, row[j]);
    }
}
