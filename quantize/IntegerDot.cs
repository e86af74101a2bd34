using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Tune.Formats;

namespace Tune.Quantize;

/// <summary>
/// ggml's CPU matrix product for one weight type: the activations are quantised once per token to the type's
/// vec_dot type (ggml-cpu.c type_traits_cpu: Q8_K for the k-quants, Q8_0 for q4_0/q5_0/q8_0, Q8_1 for q5_1), then
/// each weight row takes integer dot products with them, each block unpacked once for up to <see cref="MaxTokens"/>
/// tokens (<see cref="SuperBlockDotsAvx2"/>, <see cref="Block32DotsAvx2"/>; the scalar path unpacks to
/// <see cref="UnpackedSuperBlock"/> / <see cref="UnpackedBlock32"/>). The vector path adds the per-block scaled
/// integers in the order of the AVX2 kernel llama.cpp runs for the type, so its results are llama.cpp's to the bit:
/// ggml's vec_dot, except for q4_0 and q4_K, which llama.cpp repacks at load into q4_0_8x8 / q4_K_8x8 and sums one
/// integer per block and row. The scalar path's results differ by float rounding.
/// For q4_K, q5_0 and q8_0 there is also an AVX2 kernel over rows interleaved eight at a time
/// (<see cref="InterleavedQ4K"/>, <see cref="InterleavedBlock32"/>: one activation broadcast feeds eight rows), whose
/// results are those of the kernel llama.cpp runs for the type to the bit as well; the server multiplies with it
/// wherever a matrix's rows come in eights.
/// The kernels are compiled fully optimised at their first call (AggressiveOptimization): a server's first request
/// should not run them unoptimised, and the tiered, profile-guided code measured slower (the q6_K head of the
/// Lite-shaped model read 5.3 GB/s against 6.4).
/// </summary>
internal sealed unsafe class IntegerDot
{
    /// <summary>The tokens one <see cref="Dot"/> call takes; enough that unpacking is a small part of the work.</summary>
    public const int MaxTokens = 8;

    /// <summary>The rows one interleaved group holds.</summary>
    public const int GroupRows = 8;

    private readonly delegate*<byte*, int, byte*, int, int, Vector256<float>*, Vector128<float>*, void> _avx2;
    private readonly delegate*<byte*, UnpackedSuperBlock*, void> _unpackSuperBlock;
    private readonly delegate*<byte*, UnpackedBlock32*, void> _unpackBlock32;
    private readonly delegate*<byte*, long, int, byte*, void> _interleave;
    private readonly delegate*<byte*, int, byte*, float*, void> _groupDot;
    private readonly delegate*<byte*, int, byte*, int, float*, long, void> _groupDotFour;

    private IntegerDot(GgmlType weights, GgmlType activations, int blockSize, int weightBlockBytes, int activationBlockBytes,
        delegate*<byte*, int, byte*, int, int, Vector256<float>*, Vector128<float>*, void> avx2,
        delegate*<byte*, UnpackedSuperBlock*, void> unpackSuperBlock, delegate*<byte*, UnpackedBlock32*, void> unpackBlock32,
        int groupBlockBytes = 0, delegate*<byte*, long, int, byte*, void> interleave = null, delegate*<byte*, int, byte*, float*, void> groupDot = null)
    {
        Weights = weights;
        Activations = activations;
        BlockSize = blockSize;
        WeightBlockBytes = weightBlockBytes;
        ActivationBlockBytes = activationBlockBytes;
        _avx2 = avx2;
        _unpackSuperBlock = unpackSuperBlock;
        _unpackBlock32 = unpackBlock32;
        // The interleaved kernels are AVX2 only; elsewhere rows stay as they are and take the scalar path.
        bool interleaves = groupDot != null && KernelPaths.Best == KernelPath.Vector256;
        GroupBlockBytes = interleaves ? groupBlockBytes : 0;
        _interleave = interleaves ? interleave : null;
        _groupDot = interleaves ? groupDot : null;
        // Only q4_K has a four-token group kernel; the others take tokens one at a time.
        _groupDotFour = interleaves && weights == GgmlType.Q4_K ? &InterleavedQ4K.DotFour : null;
    }

    public GgmlType Weights { get; }

    /// <summary>Q8_K, Q8_0 or Q8_1.</summary>
    public GgmlType Activations { get; }

    public int BlockSize { get; }

    public int WeightBlockBytes { get; }

    public int ActivationBlockBytes { get; }

    /// <summary>The bytes of <see cref="GroupRows"/> rows × one block when interleaved; 0 where there is no interleaved kernel.</summary>
    public int GroupBlockBytes { get; }

    /// <summary>Whether <see cref="DotGroupFour"/> is there: an interleaved kernel that takes four tokens in one pass.</summary>
    public bool DotsFourTokensAGroup => _groupDotFour != null;

    /// <summary>The kernel for weights of <paramref name="weights"/>, or null where there is none (float types).</summary>
    public static IntegerDot? For(GgmlType weights) => weights switch
    {
        GgmlType.Q4_K => SuperBlocks(weights, Q4KCodec.BytesPerBlock, &SuperBlockDotsAvx2.Q4K, &SuperBlockUnpack.Q4K,
            InterleavedQ4K.GroupBlockBytes, &InterleavedQ4K.Interleave, &InterleavedQ4K.Dot),
        GgmlType.Q5_K => SuperBlocks(weights, Q5KCodec.BytesPerBlock, &SuperBlockDotsAvx2.Q5K, &SuperBlockUnpack.Q5K),
        GgmlType.Q6_K => SuperBlocks(weights, Q6KCodec.BytesPerBlock, &SuperBlockDotsAvx2.Q6K, &SuperBlockUnpack.Q6K),
        GgmlType.Q4_0 => Blocks32(weights, GgmlType.Q8_0, Q4_0Codec.BytesPerBlock, &Block32DotsAvx2.Q4_0, &Block32Unpack.Q4_0),
        GgmlType.Q5_0 => Blocks32(weights, GgmlType.Q8_0, Q5_0Codec.BytesPerBlock, &Block32DotsAvx2.Q5_0, &Block32Unpack.Q5_0,
            InterleavedBlock32.Q5_0GroupBlockBytes, &InterleavedBlock32.InterleaveQ5_0, &InterleavedBlock32.DotQ5_0),
        GgmlType.Q5_1 => Blocks32(weights, GgmlType.Q8_1, Q5_1Codec.BytesPerBlock, &Block32DotsAvx2.Q5_1, &Block32Unpack.Q5_1),
        GgmlType.Q8_0 => Blocks32(weights, GgmlType.Q8_0, Q8_0Codec.BytesPerBlock, &Block32DotsAvx2.Q8_0, &Block32Unpack.Q8_0,
            InterleavedBlock32.Q8_0GroupBlockBytes, &InterleavedBlock32.InterleaveQ8_0, &InterleavedBlock32.DotQ8_0),
        _ => null,
    };

    private static IntegerDot SuperBlocks(GgmlType weights, int bytes, delegate*<byte*, int, byte*, int, int, Vector256<float>*, Vector128<float>*, void> avx2,
        delegate*<byte*, UnpackedSuperBlock*, void> unpack, int groupBlockBytes = 0, delegate*<byte*, long, int, byte*, void> interleave = null,
        delegate*<byte*, int, byte*, float*, void> groupDot = null) =>
        new(weights, GgmlType.Q8_K, UnpackedSuperBlock.Size, bytes, Q8KActivations.BlockBytes, avx2, unpack, null, groupBlockBytes, interleave, groupDot);

    private static IntegerDot Blocks32(GgmlType weights, GgmlType activations, int bytes,
        delegate*<byte*, int, byte*, int, int, Vector256<float>*, Vector128<float>*, void> avx2, delegate*<byte*, UnpackedBlock32*, void> unpack,
        int groupBlockBytes = 0, delegate*<byte*, long, int, byte*, void> interleave = null, delegate*<byte*, int, byte*, float*, void> groupDot = null) =>
        new(weights, activations, UnpackedBlock32.Size, bytes, activations == GgmlType.Q8_1 ? Q8_1Activations.BlockBytes : Q8_0Activations.BlockBytes,
            avx2, null, unpack, groupBlockBytes, interleave, groupDot);

    /// <summary>The bytes of one token's quantised activations of <paramref name="values"/> values.</summary>
    public int ActivationRowBytes(int values) => values / BlockSize * ActivationBlockBytes;

    /// <summary>One token's activations to the vec_dot type's blocks.</summary>
    public void QuantizeActivations(ReadOnlySpan<float> x, Span<byte> blocks)
    {
        switch (Activations)
        {
            case GgmlType.Q8_K: Q8KActivations.Quantize(x, blocks); break;
            case GgmlType.Q8_1: Q8_1Activations.Quantize(x, blocks); break;
            default: Q8_0Activations.Quantize(x, blocks); break;
        }
    }

    /// <summary>
    /// results[t·resultStride] = the row of <paramref name="blocks"/> weight blocks at <paramref name="weights"/> ·
    /// token t's activations (at <paramref name="activations"/> + t·<paramref name="activationRowBytes"/>), for t below
    /// <paramref name="tokens"/> (at most <see cref="MaxTokens"/>).
    /// </summary>
    [SkipLocalsInit]
    public void Dot(byte* weights, int blocks, byte* activations, int activationRowBytes, int tokens, float* results,
        long resultStride, KernelPath path)
    {
        if ((uint)tokens > MaxTokens) throw new ArgumentOutOfRangeException(nameof(tokens), tokens, "more tokens than one call takes");
        if (path == KernelPath.Vector256)
        {
            Vector256<float>* sums = stackalloc Vector256<float>[MaxTokens];
            Vector128<float>* sideSums = stackalloc Vector128<float>[MaxTokens];
            for (int t = 0; t < tokens; t++)
            {
                sums[t] = Vector256<float>.Zero;
                sideSums[t] = Vector128<float>.Zero;
            }
            _avx2(weights, blocks, activations, activationRowBytes, tokens, sums, sideSums);
            for (int t = 0; t < tokens; t++) results[t * resultStride] = GgmlSum(sums[t]) + GgmlSum(sideSums[t]);
            return;
        }
        float* scalarSums = stackalloc float[MaxTokens];
        for (int t = 0; t < tokens; t++) scalarSums[t] = 0;
        if (_unpackSuperBlock != null)
        {
            UnpackedSuperBlock unpacked;
            for (int b = 0; b < blocks; b++)
            {
                _unpackSuperBlock(weights + (long)b * WeightBlockBytes, &unpacked);
                for (int t = 0; t < tokens; t++)
                    UnpackedSuperBlock.Dot(&unpacked, activations + (long)t * activationRowBytes + (long)b * ActivationBlockBytes, scalarSums + t);
            }
        }
        else
        {
            UnpackedBlock32 unpacked;
            bool withSum = Activations == GgmlType.Q8_1;
            for (int b = 0; b < blocks; b++)
            {
                _unpackBlock32(weights + (long)b * WeightBlockBytes, &unpacked);
                for (int t = 0; t < tokens; t++)
                    UnpackedBlock32.Dot(&unpacked, activations + (long)t * activationRowBytes + (long)b * ActivationBlockBytes, withSum, scalarSums + t);
            }
        }
        for (int t = 0; t < tokens; t++) results[t * resultStride] = scalarSums[t];
    }

    /// <summary>
    /// <see cref="GroupRows"/> rows of <paramref name="blocks"/> blocks, <paramref name="rowBytes"/> apart, as the
    /// interleaved kernel's group (<paramref name="blocks"/> × <see cref="GroupBlockBytes"/> bytes at <paramref name="group"/>).
    /// </summary>
    public void Interleave(byte* rows, long rowBytes, int blocks, byte* group)
    {
        if (_interleave == null) throw new NotSupportedException($"no interleaved kernel for {Weights.Name()} on this CPU");
        _interleave(rows, rowBytes, blocks, group);
    }

    /// <summary>results[0 … 7] = the eight rows of an interleaved group · one token's activations.</summary>
    public void DotGroup(byte* group, int blocks, byte* activation, float* results)
    {
        if (_groupDot == null) throw new NotSupportedException($"no interleaved kernel for {Weights.Name()} on this CPU");
        _groupDot(group, blocks, activation, results);
    }

    /// <summary>
    /// <see cref="DotGroup"/> for four tokens, activations <paramref name="activationRowBytes"/> apart, each token's
    /// eight results <paramref name="resultStride"/> apart; the same bits as four <see cref="DotGroup"/> calls.
    /// </summary>
    public void DotGroupFour(byte* group, int blocks, byte* activations, int activationRowBytes, float* results, long resultStride)
    {
        if (_groupDotFour == null) throw new NotSupportedException($"no four-token interleaved kernel for {Weights.Name()} on this CPU");
        _groupDotFour(group, blocks, activations, activationRowBytes, results, resultStride);
    }

    // hsum_float_8's order, (l0 + l4) + (l2 + l6) + ((l1 + l5) + (l3 + l7)), so that sums are ggml's to the bit.
    private static float GgmlSum(Vector256<float> lanes) => GgmlSum(lanes.GetUpper() + lanes.GetLower());

    private static float GgmlSum(Vector128<float> lanes)
    {
        Vector128<float> pairs = lanes + Sse.MoveHighToLow(lanes, lanes);
        return pairs.ToScalar() + pairs.GetElement(1);
    }
}
