using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Tune.Formats;

namespace Tune.Quantize;

/// <summary>
/// The AVX2 forms of <see cref="UnpackedBlock32.Dot"/> for q4_0, q5_0, q5_1 and q8_0 rows against up to
/// <see cref="IntegerDot.MaxTokens"/> tokens: each block's levels are unpacked into one register, then meet every
/// token's activation block, and the scaled products are added block by block in the order of the kernel
/// llama.cpp runs for the type (vec_dot; for q4_0 its repacked q4_0_8x8 GEMV/GEMM).
/// <c>vpmaddubsw</c> multiplies unsigned by signed bytes, so the weights' signs move onto the activations
/// (<c>vpsignb</c>) and |L| (at most 128) is the unsigned side.
/// </summary>
internal static unsafe class Block32DotsAvx2
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q4_0(byte* weights, int blocks, byte* activations, int activationRowBytes, int tokens, Vector256<float>* sums,
        Vector128<float>* offsetSums) =>
        Row(GgmlType.Q4_0, weights, blocks, activations, activationRowBytes, tokens, sums, offsetSums);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q5_0(byte* weights, int blocks, byte* activations, int activationRowBytes, int tokens, Vector256<float>* sums,
        Vector128<float>* offsetSums) =>
        Row(GgmlType.Q5_0, weights, blocks, activations, activationRowBytes, tokens, sums, offsetSums);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q5_1(byte* weights, int blocks, byte* activations, int activationRowBytes, int tokens, Vector256<float>* sums,
        Vector128<float>* offsetSums) =>
        Row(GgmlType.Q5_1, weights, blocks, activations, activationRowBytes, tokens, sums, offsetSums);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q8_0(byte* weights, int blocks, byte* activations, int activationRowBytes, int tokens, Vector256<float>* sums,
        Vector128<float>* offsetSums) =>
        Row(GgmlType.Q8_0, weights, blocks, activations, activationRowBytes, tokens, sums, offsetSums);

    // type is a constant in each caller, so the switches below fold away. One token keeps its sums in registers.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Row(GgmlType type, byte* weights, int blocks, byte* activations, int activationRowBytes, int tokens,
        Vector256<float>* sums, Vector128<float>* offsetSums)
    {
        int weightBytes = type switch
        {
            GgmlType.Q4_0 => Q4_0Codec.BytesPerBlock,
            GgmlType.Q5_0 => Q5_0Codec.BytesPerBlock,
            GgmlType.Q5_1 => Q5_1Codec.BytesPerBlock,
            _ => Q8_0Codec.BytesPerBlock,
        };
        bool withSum = type == GgmlType.Q5_1, wholeBlockSums = type == GgmlType.Q4_0;
        int activationBytes = withSum ? Q8_1Activations.BlockBytes : Q8_0Activations.BlockBytes;
        if (tokens == 1)
        {
            Vector256<float> sum = sums[0];
            float offsetSum = offsetSums[0].ToScalar();
            for (int b = 0; b < blocks; b++)
            {
                Vector256<sbyte> levels = Levels(type, weights + (long)b * weightBytes, out float scale, out float offset);
                Accumulate(Avx2.Abs(levels), levels, scale, offset, activations + (long)b * activationBytes, withSum, wholeBlockSums, ref sum, ref offsetSum);
            }
            sums[0] = sum;
            offsetSums[0] = Vector128.CreateScalar(offsetSum);
            return;
        }
        for (int b = 0; b < blocks; b++)
        {
            Vector256<sbyte> levels = Levels(type, weights + (long)b * weightBytes, out float scale, out float offset);
            Vector256<byte> magnitudes = Avx2.Abs(levels);
            byte* activation = activations + (long)b * activationBytes;
            for (int t = 0; t < tokens; t++, activation += activationRowBytes)
                Accumulate(magnitudes, levels, scale, offset, activation, withSum, wholeBlockSums, ref sums[t],
                    ref Unsafe.As<Vector128<float>, float>(ref offsetSums[t]));
        }
    }

    // The block's 32 signed levels, its scale and (q5_1) its offset.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> Levels(GgmlType type, byte* block, out float scale, out float offset)
    {
        scale = Fp16.ToFloat(Unsafe.ReadUnaligned<ushort>(block));
        offset = type == GgmlType.Q5_1 ? Fp16.ToFloat(Unsafe.ReadUnaligned<ushort>(block + 2)) : 0;
        return type switch
        {
            GgmlType.Q4_0 => Nibbles(block + 2) - Vector256.Create((sbyte)8),
            GgmlType.Q5_0 => (Nibbles(block + 6) | FifthBits(Unsafe.ReadUnaligned<uint>(block + 2))) - Vector256.Create((sbyte)16),
            GgmlType.Q5_1 => Nibbles(block + 8) | FifthBits(Unsafe.ReadUnaligned<uint>(block + 4)),
            _ => Vector256.Load((sbyte*)block + 2),
        };
    }

    // sum += d_w·d_x·Σ L·q in 8 float lanes and (Q8_1) offsetSum += m·s, as ggml's vec_dot adds them; or, with
    // wholeBlockSums, offsetSum += d_w·d_x·Σ L·q of the whole block as one integer, as the repacked q4_0_8x8 kernels
    // that llama.cpp's AVX2 build runs for q4_0 add them (gemv/gemm_q4_b32_8x8_q8_0_lut_avx, one row per lane).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Accumulate(Vector256<byte> magnitudes, Vector256<sbyte> levels, float scale, float offset, byte* activation, bool withSum,
        bool wholeBlockSums, ref Vector256<float> sum, ref float offsetSum)
    {
        Vector256<sbyte> q = Vector256.Load((sbyte*)activation + (withSum ? Q8_1Activations.LevelsOffset : Q8_0Activations.LevelsOffset));
        Vector256<int> levelSum = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(magnitudes, Avx2.Sign(q, levels)), Vector256<short>.One);
        float d = scale * Fp16.ToFloat(Unsafe.ReadUnaligned<ushort>(activation));
        if (wholeBlockSums)
        {
            offsetSum = MathF.FusedMultiplyAdd(Vector256.Sum(levelSum), d, offsetSum);
            return;
        }
        sum = Vector256.MultiplyAddEstimate(Vector256.Create(d), Avx.ConvertToVector256Single(levelSum), sum);
        if (withSum) offsetSum += offset * Fp16.ToFloat(Unsafe.ReadUnaligned<ushort>(activation + Q8_1Activations.SumOffset));
    }

    // Byte j of the 16 holds level j (low nibble) and level 16 + j (high nibble).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> Nibbles(byte* q)
    {
        Vector128<byte> packed = Vector128.Load(q), nibble = Vector128.Create((byte)0x0F);
        return Vector256.Create(packed & nibble, Vector128.ShiftRightLogical(packed.AsUInt16(), 4).AsByte() & nibble).AsSByte();
    }

    // 16 in byte j where bit j of qh (bit 4 of level j) is set: byte j gets qh's byte j / 8 (vpshufb works within
    // each 128-bit half, and both hold all of qh), then tests its own bit j % 8.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> FifthBits(uint qh)
    {
        Vector256<byte> spread = Avx2.Shuffle(Vector256.Create(qh).AsByte(), Vector256.Create(
            (byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
        Vector256<byte> bit = Vector256.Create(0x8040201008040201UL).AsByte();
        return (Vector256.Equals(spread & bit, bit) & Vector256.Create((byte)16)).AsSByte();
    }
}
