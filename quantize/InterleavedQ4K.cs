using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tune.Quantize;

/// <summary>
/// q4_K rows interleaved eight at a time, so that one broadcast of four activations meets the same four levels of
/// eight rows in one <c>vpmaddubsw</c>, and the scales, mins and float steps of eight rows are one vector each. A
/// group block (eight rows × one 256-weight super-block, <see cref="GroupBlockBytes"/>) holds the rows' d and dmin
/// (fp16), their sub-block scales by sub-block then row, their mins by sub-block pair then row then sub-block, and
/// the packed nibbles by 32-byte chunk p, then four-byte run k, then row: 32 bytes whose low nibbles are four
/// levels of sub-block 2p and high nibbles the same of sub-block 2p + 1, for all eight rows.
/// The result is llama.cpp's repacked q4_K_8x8 GEMV to the bit: per row and super-block one integer sum of the
/// scaled levels and one of the mins against the bsums, each added to its float accumulator with d·d_x (dmin·d_x),
/// the min accumulator subtracted at the end.
/// </summary>
internal static unsafe class InterleavedQ4K
{
    public const int Rows = 8;
    public const int GroupBlockBytes = 2 * 2 * Rows + 8 * Rows + 8 * Rows + 128 * Rows;

    private const int ScalesOffset = 2 * 2 * Rows, MinsOffset = ScalesOffset + 8 * Rows, LevelsOffset = MinsOffset + 8 * Rows;

    /// <summary>Eight q4_K rows of <paramref name="blocks"/> super-blocks, <paramref name="rowBytes"/> apart, as group blocks.</summary>
    public static void Interleave(byte* rows, long rowBytes, int blocks, byte* group)
    {
        for (int b = 0; b < blocks; b++, group += GroupBlockBytes)
            for (int r = 0; r < Rows; r++)
            {
                byte* block = rows + r * rowBytes + (long)b * Q4KCodec.BytesPerBlock;
                ((ushort*)group)[r] = Unsafe.ReadUnaligned<ushort>(block);
                ((ushort*)group)[Rows + r] = Unsafe.ReadUnaligned<ushort>(block + 2);
                (ulong scales, ulong mins) = SuperBlockUnpack.ScalesAndMins(block);
                for (int j = 0; j < 8; j++)
                {
                    group[ScalesOffset + Rows * j + r] = (byte)(scales >> 8 * j);
                    group[MinsOffset + 2 * Rows * (j / 2) + 2 * r + j % 2] = (byte)(mins >> 8 * j);
                }
                for (int p = 0; p < 4; p++)
                    for (int k = 0; k < 8; k++)
                        Unsafe.WriteUnaligned(group + LevelsOffset + 32 * Rows * p + 4 * Rows * k + 4 * r,
                            Unsafe.ReadUnaligned<uint>(block + SuperBlockUnpack.Q4KLevels + 32 * p + 4 * k));
            }
    }

    /// <summary>The eight rows of a group of <paramref name="blocks"/> group blocks · one token's Q8_K activations.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot(byte* group, int blocks, byte* activation, float* results)
    {
        Vector128<byte> firstOfPair = Vector128.Create((byte)0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
        Vector128<byte> secondOfPair = firstOfPair + Vector128.Create((byte)8);
        Vector256<float> levels = Vector256<float>.Zero, mins = Vector256<float>.Zero;
        for (int b = 0; b < blocks; b++, group += GroupBlockBytes, activation += Q8KActivations.BlockBytes)
        {
            StreamPrefetch.Ahead(group, GroupBlockBytes);
            byte* q = activation + Q8KActivations.LevelsOffset;
            short* bsums = (short*)(activation + Q8KActivations.SumsOffset);
            // The activations' sum over each 32-value sub-block, two to an int32 lane as the mins are paired.
            Vector128<int> subBlockSums = Ssse3.HorizontalAdd(Vector128.Load(bsums), Vector128.Load(bsums + 8)).AsInt32();
            Vector256<int> levelSum = Vector256<int>.Zero, minSum = Vector256<int>.Zero;
            for (int p = 0; p < 4; p++)
            {
                byte* w = group + LevelsOffset + 32 * Rows * p;
                byte* x = q + 64 * p;
                Vector256<short> low = Vector256<short>.Zero, high = Vector256<short>.Zero;
                for (int k = 0; k < 8; k++)
                {
                    Vector256<byte> packed = Vector256.Load(w + 4 * Rows * k);
                    low += Avx2.MultiplyAddAdjacent(packed & Vector256.Create((byte)0x0F), Broadcast(x + 4 * k));
                    high += Avx2.MultiplyAddAdjacent(Vector256.ShiftRightLogical(packed.AsUInt16(), 4).AsByte() & Vector256.Create((byte)0x0F),
                        Broadcast(x + 32 + 4 * k));
                }
                Vector128<byte> scales = Vector128.Load(group + ScalesOffset + 2 * Rows * p);
                levelSum += Avx2.MultiplyAddAdjacent(low, Avx2.ConvertToVector256Int16(Ssse3.Shuffle(scales, firstOfPair)).AsInt16())
                            + Avx2.MultiplyAddAdjacent(high, Avx2.ConvertToVector256Int16(Ssse3.Shuffle(scales, secondOfPair)).AsInt16());
                minSum += Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(Vector128.Load(group + MinsOffset + 2 * Rows * p)).AsInt16(),
                    Vector256.Create(subBlockSums.GetElement(p)).AsInt16());
            }
            Vector256<float> dx = Vector256.Create(Unsafe.ReadUnaligned<float>(activation));
            levels = Fma.MultiplyAdd(Avx.ConvertToVector256Single(levelSum), Fp16.ToFloat(Vector128.Load((ushort*)group)) * dx, levels);
            mins = Fma.MultiplyAdd(Avx.ConvertToVector256Single(minSum), Fp16.ToFloat(Vector128.Load((ushort*)group + Rows)) * dx, mins);
        }
        (levels - mins).Store(results);
    }

    /// <summary>
    /// <see cref="Dot"/> for four tokens at once (activations <paramref name="activationRowBytes"/> apart, results
    /// <paramref name="resultStride"/> apart): each 32-byte run of levels is loaded and split into nibbles once for the
    /// four, and each pair's scales and mins widened once. The same integers and float steps per token as <see cref="Dot"/>,
    /// so the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [SkipLocalsInit]
    public static void DotFour(byte* group, int blocks, byte* activations, int activationRowBytes, float* results, long resultStride)
    {
        Vector128<byte> firstOfPair = Vector128.Create((byte)0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
        Vector128<byte> secondOfPair = firstOfPair + Vector128.Create((byte)8);
        Vector256<float>* levels = stackalloc Vector256<float>[4], mins = stackalloc Vector256<float>[4];
        Vector256<int>* levelSums = stackalloc Vector256<int>[4], minSums = stackalloc Vector256<int>[4];
        for (int t = 0; t < 4; t++) levels[t] = mins[t] = Vector256<float>.Zero;
        byte* a0 = activations, a1 = a0 + activationRowBytes, a2 = a1 + activationRowBytes, a3 = a2 + activationRowBytes;
        for (int b = 0; b < blocks; b++, group += GroupBlockBytes)
        {
            StreamPrefetch.Ahead(group, GroupBlockBytes);
            long block = (long)b * Q8KActivations.BlockBytes;
            byte* q0 = a0 + block + Q8KActivations.LevelsOffset, q1 = a1 + block + Q8KActivations.LevelsOffset;
            byte* q2 = a2 + block + Q8KActivations.LevelsOffset, q3 = a3 + block + Q8KActivations.LevelsOffset;
            for (int t = 0; t < 4; t++) levelSums[t] = minSums[t] = Vector256<int>.Zero;
            for (int p = 0; p < 4; p++)
            {
                byte* w = group + LevelsOffset + 32 * Rows * p;
                int x = 64 * p;
                Vector256<short> low0 = Vector256<short>.Zero, low1 = Vector256<short>.Zero, low2 = Vector256<short>.Zero, low3 = Vector256<short>.Zero;
                Vector256<short> high0 = Vector256<short>.Zero, high1 = Vector256<short>.Zero, high2 = Vector256<short>.Zero, high3 = Vector256<short>.Zero;
                for (int k = 0; k < 8; k++, x += 4)
                {
                    Vector256<byte> packed = Vector256.Load(w + 4 * Rows * k);
                    Vector256<byte> low = packed & Vector256.Create((byte)0x0F);
                    Vector256<byte> high = Vector256.ShiftRightLogical(packed.AsUInt16(), 4).AsByte() & Vector256.Create((byte)0x0F);
                    low0 += Avx2.MultiplyAddAdjacent(low, Broadcast(q0 + x));
                    low1 += Avx2.MultiplyAddAdjacent(low, Broadcast(q1 + x));
                    low2 += Avx2.MultiplyAddAdjacent(low, Broadcast(q2 + x));
                    low3 += Avx2.MultiplyAddAdjacent(low, Broadcast(q3 + x));
                    high0 += Avx2.MultiplyAddAdjacent(high, Broadcast(q0 + x + 32));
                    high1 += Avx2.MultiplyAddAdjacent(high, Broadcast(q1 + x + 32));
                    high2 += Avx2.MultiplyAddAdjacent(high, Broadcast(q2 + x + 32));
                    high3 += Avx2.MultiplyAddAdjacent(high, Broadcast(q3 + x + 32));
                }
                Vector128<byte> scales = Vector128.Load(group + ScalesOffset + 2 * Rows * p);
                Vector256<short> first = Avx2.ConvertToVector256Int16(Ssse3.Shuffle(scales, firstOfPair)).AsInt16();
                Vector256<short> second = Avx2.ConvertToVector256Int16(Ssse3.Shuffle(scales, secondOfPair)).AsInt16();
                Vector256<short> pairMins = Avx2.ConvertToVector256Int16(Vector128.Load(group + MinsOffset + 2 * Rows * p)).AsInt16();
                levelSums[0] += Avx2.MultiplyAddAdjacent(low0, first) + Avx2.MultiplyAddAdjacent(high0, second);
                levelSums[1] += Avx2.MultiplyAddAdjacent(low1, first) + Avx2.MultiplyAddAdjacent(high1, second);
                levelSums[2] += Avx2.MultiplyAddAdjacent(low2, first) + Avx2.MultiplyAddAdjacent(high2, second);
                levelSums[3] += Avx2.MultiplyAddAdjacent(low3, first) + Avx2.MultiplyAddAdjacent(high3, second);
                minSums[0] += Avx2.MultiplyAddAdjacent(pairMins, SubBlockPairSums(a0 + block, p));
                minSums[1] += Avx2.MultiplyAddAdjacent(pairMins, SubBlockPairSums(a1 + block, p));
                minSums[2] += Avx2.MultiplyAddAdjacent(pairMins, SubBlockPairSums(a2 + block, p));
                minSums[3] += Avx2.MultiplyAddAdjacent(pairMins, SubBlockPairSums(a3 + block, p));
            }
            Vector256<float> d = Fp16.ToFloat(Vector128.Load((ushort*)group)), dmin = Fp16.ToFloat(Vector128.Load((ushort*)group + Rows));
            for (int t = 0; t < 4; t++)
            {
                Vector256<float> dx = Vector256.Create(Unsafe.ReadUnaligned<float>(activations + t * activationRowBytes + block));
                levels[t] = Fma.MultiplyAdd(Avx.ConvertToVector256Single(levelSums[t]), d * dx, levels[t]);
                mins[t] = Fma.MultiplyAdd(Avx.ConvertToVector256Single(minSums[t]), dmin * dx, mins[t]);
            }
        }
        for (int t = 0; t < 4; t++) (levels[t] - mins[t]).Store(results + t * resultStride);
    }

    // The activations' sums over sub-blocks 2p and 2p + 1 (two bsums each) as an int16 pair in every int32 lane,
    // as the mins of a pair lie.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> SubBlockPairSums(byte* activation, int pair)
    {
        short* bsums = (short*)(activation + Q8KActivations.SumsOffset) + 4 * pair;
        uint sums = (ushort)(short)(bsums[0] + bsums[1]) | (uint)(ushort)(short)(bsums[2] + bsums[3]) << 16;
        return Vector256.Create(sums).AsInt16();
    }

    // Four activation bytes in every int32 lane.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> Broadcast(byte* x) => Vector256.Create(Unsafe.ReadUnaligned<int>(x)).AsSByte();
}
