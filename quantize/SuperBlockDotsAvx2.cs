using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tune.Quantize;

/// <summary>
/// The AVX2 forms of <see cref="UnpackedSuperBlock.Dot"/> for q4_K, q5_K and q6_K rows against up to
/// <see cref="IntegerDot.MaxTokens"/> tokens of Q8_K activations. A super-block's 256 levels and 16 group scales are
/// unpacked into registers once (the JIT spills what does not fit; spilled values are only read back), then each
/// token's activations meet them: <c>vpmaddubsw</c> (unsigned level × signed activation, pairs summed to int16;
/// L ≤ 63 keeps them under 2^15), then <c>vpmaddwd</c> with the groups' scales (int32), summed as a tree so the
/// only chain from block to block is the float accumulator. The mins (q4_K/q5_K) and the +32 of q6_K's levels meet
/// the activations' bsums instead of every level. Integer sums are exact and the float steps are ggml's, in its order.
/// </summary>
internal static unsafe class SuperBlockDotsAvx2
{

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q4K(byte* weights, int blocks, byte* activations, int activationRowBytes, int tokens, Vector256<float>* sums,
        Vector128<float>* minSums) =>
        ScaleMinBlocks(weights, Q4KCodec.BytesPerBlock, withHighBits: false, wholeBlockSums: true, blocks, activations, activationRowBytes, tokens, sums, minSums);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q5K(byte* weights, int blocks, byte* activations, int activationRowBytes, int tokens, Vector256<float>* sums,
        Vector128<float>* minSums) =>
        ScaleMinBlocks(weights, Q5KCodec.BytesPerBlock, withHighBits: true, wholeBlockSums: false, blocks, activations, activationRowBytes, tokens, sums, minSums);

    /// <param name="sideSums">unused: q6_K has no mins.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q6K(byte* weights, int blocks, byte* activations, int activationRowBytes, int tokens, Vector256<float>* sums,
        Vector128<float>* sideSums)
    {
        if (tokens == 1)
        {
            sums[0] = Q6KOneToken(weights, blocks, activations, sums[0]);
            return;
        }
        for (int b = 0; b < blocks; b++)
        {
            byte* block = weights + (long)b * Q6KCodec.BytesPerBlock, activation = activations + (long)b * Q8KActivations.BlockBytes;
            Vector128<sbyte> s = Vector128.Load((sbyte*)(block + SuperBlockUnpack.Q6KScales));
            (Vector256<byte> l0, Vector256<byte> l1, Vector256<byte> l2, Vector256<byte> l3) = Q6KHalf(block, 0);
            (Vector256<byte> l4, Vector256<byte> l5, Vector256<byte> l6, Vector256<byte> l7) = Q6KHalf(block, 1);
            Vector256<short> s0 = GroupScales(s, 0), s1 = GroupScales(s, 1), s2 = GroupScales(s, 2), s3 = GroupScales(s, 3);
            Vector256<short> s4 = GroupScales(s, 4), s5 = GroupScales(s, 5), s6 = GroupScales(s, 6), s7 = GroupScales(s, 7);
            Vector256<short> corrections = Q6KCorrections(s);
            float d = Fp16.ToFloat(Unsafe.ReadUnaligned<ushort>(block + SuperBlockUnpack.Q6KScale));
            for (int t = 0; t < tokens; t++, activation += activationRowBytes)
            {
                sbyte* q = (sbyte*)(activation + Q8KActivations.LevelsOffset);
                Vector256<int> levelSum = ((Pairs(l0, q, s0) + Pairs(l1, q + 32, s1)) + (Pairs(l2, q + 64, s2) + Pairs(l3, q + 96, s3)))
                    + ((Pairs(l4, q + 128, s4) + Pairs(l5, q + 160, s5)) + (Pairs(l6, q + 192, s6) + Pairs(l7, q + 224, s7)));
                Vector256<int> offset = Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(activation + Q8KActivations.SumsOffset)), corrections);
                float scale = d * Unsafe.ReadUnaligned<float>(activation);
                sums[t] = Vector256.MultiplyAddEstimate(Avx.ConvertToVector256Single(levelSum - offset), Vector256.Create(scale), sums[t]);
            }
        }
    }

    // One token, as ggml's vec_dot runs it: each half-block's levels and scales are made where they are used,
    // so nothing is held across the block (the same integers as the loop above, so the same sums).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Vector256<float> Q6KOneToken(byte* weights, int blocks, byte* activation, Vector256<float> sum)
    {
        for (int b = 0; b < blocks; b++, weights += Q6KCodec.BytesPerBlock, activation += Q8KActivations.BlockBytes)
        {
            StreamPrefetch.Ahead(weights, Q6KCodec.BytesPerBlock);
            Vector128<sbyte> s = Vector128.Load((sbyte*)(weights + SuperBlockUnpack.Q6KScales));
            sbyte* q = (sbyte*)(activation + Q8KActivations.LevelsOffset);
            Vector256<int> levelSum = Q6KHalfSum(weights, 0, q, s) + Q6KHalfSum(weights, 1, q + 128, s);
            Vector256<int> offset = Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(activation + Q8KActivations.SumsOffset)), Q6KCorrections(s));
            float scale = Fp16.ToFloat(Unsafe.ReadUnaligned<ushort>(weights + SuperBlockUnpack.Q6KScale)) * Unsafe.ReadUnaligned<float>(activation);
            sum = Vector256.MultiplyAddEstimate(Avx.ConvertToVector256Single(levelSum - offset), Vector256.Create(scale), sum);
        }
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q6KHalfSum(byte* block, int half, sbyte* q, Vector128<sbyte> scales)
    {
        (Vector256<byte> l0, Vector256<byte> l1, Vector256<byte> l2, Vector256<byte> l3) = Q6KHalf(block, half);
        return (Pairs(l0, q, GroupScales(scales, 4 * half)) + Pairs(l1, q + 32, GroupScales(scales, 4 * half + 1)))
               + (Pairs(l2, q + 64, GroupScales(scales, 4 * half + 2)) + Pairs(l3, q + 96, GroupScales(scales, 4 * half + 3)));
    }

    // Σ (L − 32)·q·scale = Σ L·q·scale − Σ_g 32·scale_g·bsum_g, in integers as ggml has it.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Q6KCorrections(Vector128<sbyte> scales) => Vector256.ShiftLeft(Avx2.ConvertToVector256Int16(scales), 5);

    // q4_K and q5_K: the ScaleMinSuperBlock header, then (q5_K) 32 bytes of fifth bits, then the nibbles. With
    // wholeBlockSums each block's level and min sums are one integer each, added into two floats (side lanes 0 and
    // −1), as the repacked q4_K_8x8 kernels that llama.cpp's AVX2 build runs for q4_K add them (one row per lane).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScaleMinBlocks(byte* weights, int blockBytes, bool withHighBits, bool wholeBlockSums, int blocks, byte* activations,
        int activationRowBytes, int tokens, Vector256<float>* sums, Vector128<float>* minSums)
    {
        for (int b = 0; b < blocks; b++)
        {
            byte* block = weights + (long)b * blockBytes, activation = activations + (long)b * Q8KActivations.BlockBytes;
            (ulong scales, ulong mins) = SuperBlockUnpack.ScalesAndMins(block);
            (Vector256<byte> l0, Vector256<byte> l1) = ScaleMinChunk(block, withHighBits, 0);
            (Vector256<byte> l2, Vector256<byte> l3) = ScaleMinChunk(block, withHighBits, 1);
            (Vector256<byte> l4, Vector256<byte> l5) = ScaleMinChunk(block, withHighBits, 2);
            (Vector256<byte> l6, Vector256<byte> l7) = ScaleMinChunk(block, withHighBits, 3);
            Vector256<short> s0 = SubBlockScale(scales, 0), s1 = SubBlockScale(scales, 1), s2 = SubBlockScale(scales, 2), s3 = SubBlockScale(scales, 3);
            Vector256<short> s4 = SubBlockScale(scales, 4), s5 = SubBlockScale(scales, 5), s6 = SubBlockScale(scales, 6), s7 = SubBlockScale(scales, 7);
            // Each sub-block's min against the sum of its two 16-level bsums.
            Vector128<short> mins16 = Sse41.ConvertToVector128Int16(Vector128.CreateScalar(mins).AsByte());
            float d = Fp16.ToFloat(Unsafe.ReadUnaligned<ushort>(block)), dmin = Fp16.ToFloat(Unsafe.ReadUnaligned<ushort>(block + 2));
            for (int t = 0; t < tokens; t++, activation += activationRowBytes)
            {
                sbyte* q = (sbyte*)(activation + Q8KActivations.LevelsOffset);
                Vector256<int> levelSum = ((Pairs(l0, q, s0) + Pairs(l1, q + 32, s1)) + (Pairs(l2, q + 64, s2) + Pairs(l3, q + 96, s3)))
                    + ((Pairs(l4, q + 128, s4) + Pairs(l5, q + 160, s5)) + (Pairs(l6, q + 192, s6) + Pairs(l7, q + 224, s7)));
                short* bsums = (short*)(activation + Q8KActivations.SumsOffset);
                Vector128<int> minSum = Sse2.MultiplyAddAdjacent(mins16, Ssse3.HorizontalAdd(Vector128.Load(bsums), Vector128.Load(bsums + 8)));
                float dx = Unsafe.ReadUnaligned<float>(activation);
                if (wholeBlockSums)
                {
                    float* side = (float*)(minSums + t);
                    side[0] = MathF.FusedMultiplyAdd(Vector256.Sum(levelSum), d * dx, side[0]);
                    side[1] = MathF.FusedMultiplyAdd(Vector128.Sum(minSum), -(dmin * dx), side[1]);
                    continue;
                }
                sums[t] = Vector256.MultiplyAddEstimate(Avx.ConvertToVector256Single(levelSum), Vector256.Create(d * dx), sums[t]);
                // ggml's q4_K keeps 4 lanes of min sums, its q5_K one float of whole-block integer sums (the add
                // compiled to an FMA).
                if (withHighBits)
                    minSums[t] = Vector128.CreateScalar(MathF.FusedMultiplyAdd(-dmin * dx, Vector128.Sum(minSum), minSums[t].ToScalar()));
                else
                    minSums[t] = Vector128.MultiplyAddEstimate(Sse2.ConvertToVector128Single(minSum), Vector128.Create(-dmin * dx), minSums[t]);
            }
        }
    }

    // Levels 64·chunk … 64·chunk + 63: the low and high nibbles of 32 bytes, plus (q5_K) 16 where bit 2·chunk
    // (2·chunk + 1) of the fifth-bit byte is set.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<byte> Low, Vector256<byte> High) ScaleMinChunk(byte* block, bool withHighBits, int chunk)
    {
        Vector256<byte> nibble = Vector256.Create((byte)0x0F);
        Vector256<byte> packed = Vector256.Load(block + (withHighBits ? SuperBlockUnpack.Q5KLevels : SuperBlockUnpack.Q4KLevels) + 32 * chunk);
        Vector256<byte> low = packed & nibble, high = Vector256.ShiftRightLogical(packed.AsUInt16(), 4).AsByte() & nibble;
        if (withHighBits)
        {
            Vector256<byte> highBits = Vector256.Load(block + SuperBlockUnpack.Q5KHighBits), sixteen = Vector256.Create((byte)16);
            Vector256<byte> lowBit = Vector256.Create((byte)(1 << 2 * chunk)), highBit = Vector256.Create((byte)(2 << 2 * chunk));
            low |= Vector256.Equals(highBits & lowBit, lowBit) & sixteen;
            high |= Vector256.Equals(highBits & highBit, highBit) & sixteen;
        }
        return (low, high);
    }

    // Levels 128·half … 128·half + 127 of a q6_K block (four 32-level runs; see Q6KCodec for where their bits lie).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<byte>, Vector256<byte>, Vector256<byte>, Vector256<byte>) Q6KHalf(byte* block, int half)
    {
        Vector256<byte> nibble = Vector256.Create((byte)0x0F);
        Vector256<byte> a = Vector256.Load(block + 64 * half), c = Vector256.Load(block + 64 * half + 32);
        Vector256<ushort> h = Vector256.Load(block + SuperBlockUnpack.Q6KHighBits + 32 * half).AsUInt16();
        return (
            (a & nibble) | Vector256.ShiftLeft(h & Vector256.Create((ushort)0x0303), 4).AsByte(),
            (c & nibble) | Vector256.ShiftLeft(h & Vector256.Create((ushort)0x0C0C), 2).AsByte(),
            (Vector256.ShiftRightLogical(a.AsUInt16(), 4).AsByte() & nibble) | (h & Vector256.Create((ushort)0x3030)).AsByte(),
            (Vector256.ShiftRightLogical(c.AsUInt16(), 4).AsByte() & nibble) | Vector256.ShiftRightLogical(h & Vector256.Create((ushort)0xC0C0), 2).AsByte());
    }

    // 32 levels · 32 activations, as 8 int32 lanes each holding two 16-weight groups' scaled pair sums.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Pairs(Vector256<byte> levels, sbyte* q, Vector256<short> scales) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(levels, Vector256.Load(q)), scales);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> SubBlockScale(ulong scales, int subBlock) => Vector256.Create((short)(byte)(scales >> 8 * subBlock));

    // 16 int16 lanes: the first 8 (the first 16 weights' pairs) group 2·pair's scale, the last 8 group 2·pair + 1's.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> GroupScales(Vector128<sbyte> scales, int pair)
    {
        byte first = (byte)(2 * pair), second = (byte)(2 * pair + 1);
        Vector128<byte> spread = Vector128.Create(first, first, first, first, first, first, first, first, second, second, second, second, second, second, second, second);
        return Avx2.ConvertToVector256Int16(Ssse3.Shuffle(scales, spread.AsSByte()));
    }
}
