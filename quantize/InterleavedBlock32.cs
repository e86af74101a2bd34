using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Tune.Formats;

namespace Tune.Quantize;

/// <summary>
/// q8_0 and q5_0 rows interleaved eight at a time (the same bytes as eight rows, reordered): per 32-weight block
/// column the rows' fp16 d, then the levels in four-byte runs, run k of the eight rows in one 32-byte vector. For
/// q8_0 that vector holds the levels; for q5_0, runs k and k + 4 share a vector of nibbles (low, high), and a
/// last 32-byte vector holds the fifth bits, byte 4·row + i bit k being that of level 4k + i.
/// One broadcast of four activations then meets the four levels of eight rows, and run k's partial sums land in an
/// accumulator of their own: those are the eight lanes of ggml's vec_dot (whose lane k sums levels 4k … 4k + 3, each
/// block added with fma(d_w·d_x, ·)), so the vertical sum in hsum_float_8's order gives vec_dot's results to the bit.
/// </summary>
internal static unsafe class InterleavedBlock32
{
    public const int Rows = 8;
    public const int Q8_0GroupBlockBytes = Rows * Q8_0Codec.BytesPerBlock;
    public const int Q5_0GroupBlockBytes = Rows * Q5_0Codec.BytesPerBlock;

    private const int LevelsOffset = 2 * Rows;
    private const int Q5_0HighBitsOffset = LevelsOffset + 4 * 4 * Rows;

    /// <summary>Eight q8_0 rows of <paramref name="blocks"/> blocks, <paramref name="rowBytes"/> apart, as group blocks.</summary>
    public static void InterleaveQ8_0(byte* rows, long rowBytes, int blocks, byte* group)
    {
        for (int b = 0; b < blocks; b++, group += Q8_0GroupBlockBytes)
            for (int r = 0; r < Rows; r++)
            {
                byte* block = rows + r * rowBytes + (long)b * Q8_0Codec.BytesPerBlock;
                ((ushort*)group)[r] = Unsafe.ReadUnaligned<ushort>(block);
                for (int k = 0; k < 8; k++)
                    Unsafe.WriteUnaligned(group + LevelsOffset + 4 * Rows * k + 4 * r, Unsafe.ReadUnaligned<uint>(block + 2 + 4 * k));
            }
    }

    /// <summary>Eight q5_0 rows of <paramref name="blocks"/> blocks, <paramref name="rowBytes"/> apart, as group blocks.</summary>
    public static void InterleaveQ5_0(byte* rows, long rowBytes, int blocks, byte* group)
    {
        for (int b = 0; b < blocks; b++, group += Q5_0GroupBlockBytes)
            for (int r = 0; r < Rows; r++)
            {
                byte* block = rows + r * rowBytes + (long)b * Q5_0Codec.BytesPerBlock;
                ((ushort*)group)[r] = Unsafe.ReadUnaligned<ushort>(block);
                uint highBits = Unsafe.ReadUnaligned<uint>(block + 2);
                for (int k = 0; k < 4; k++)
                    Unsafe.WriteUnaligned(group + LevelsOffset + 4 * Rows * k + 4 * r, Unsafe.ReadUnaligned<uint>(block + 6 + 4 * k));
                for (int i = 0; i < 4; i++)
                {
                    int spread = 0;
                    for (int k = 0; k < 8; k++) spread |= (int)(highBits >> 4 * k + i & 1) << k;
                    group[Q5_0HighBitsOffset + 4 * r + i] = (byte)spread;
                }
            }
    }

    /// <summary>The eight rows of a group of q8_0 group blocks · one token's Q8_0 activations.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotQ8_0(byte* group, int blocks, byte* activation, float* results) =>
        Dot(GgmlType.Q8_0, group, blocks, activation, results);

    /// <summary>The eight rows of a group of q5_0 group blocks · one token's Q8_0 activations.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotQ5_0(byte* group, int blocks, byte* activation, float* results) =>
        Dot(GgmlType.Q5_0, group, blocks, activation, results);

    // type is a constant in each caller, so its tests fold away.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Dot(GgmlType type, byte* group, int blocks, byte* activation, float* results)
    {
        int groupBlockBytes = type == GgmlType.Q8_0 ? Q8_0GroupBlockBytes : Q5_0GroupBlockBytes;
        Vector256<float> s0 = Vector256<float>.Zero, s1 = Vector256<float>.Zero, s2 = Vector256<float>.Zero, s3 = Vector256<float>.Zero;
        Vector256<float> s4 = Vector256<float>.Zero, s5 = Vector256<float>.Zero, s6 = Vector256<float>.Zero, s7 = Vector256<float>.Zero;
        for (int b = 0; b < blocks; b++, group += groupBlockBytes, activation += Q8_0Activations.BlockBytes)
        {
            StreamPrefetch.Ahead(group, groupBlockBytes);
            Vector256<float> d = Fp16.ToFloat(Vector128.Load((ushort*)group)) * Vector256.Create(Fp16.ToFloat(Unsafe.ReadUnaligned<ushort>(activation)));
            byte* x = activation + Q8_0Activations.LevelsOffset;
            if (type == GgmlType.Q8_0)
            {
                byte* levels = group + LevelsOffset;
                s0 = Accumulate(Vector256.Load((sbyte*)levels), x, d, s0);
                s1 = Accumulate(Vector256.Load((sbyte*)levels + 32), x + 4, d, s1);
                s2 = Accumulate(Vector256.Load((sbyte*)levels + 64), x + 8, d, s2);
                s3 = Accumulate(Vector256.Load((sbyte*)levels + 96), x + 12, d, s3);
                s4 = Accumulate(Vector256.Load((sbyte*)levels + 128), x + 16, d, s4);
                s5 = Accumulate(Vector256.Load((sbyte*)levels + 160), x + 20, d, s5);
                s6 = Accumulate(Vector256.Load((sbyte*)levels + 192), x + 24, d, s6);
                s7 = Accumulate(Vector256.Load((sbyte*)levels + 224), x + 28, d, s7);
                continue;
            }
            Vector256<byte> highBits = Vector256.Load(group + Q5_0HighBitsOffset);
            Vector256<byte> n0 = Vector256.Load(group + LevelsOffset), n1 = Vector256.Load(group + LevelsOffset + 32);
            Vector256<byte> n2 = Vector256.Load(group + LevelsOffset + 64), n3 = Vector256.Load(group + LevelsOffset + 96);
            s0 = Accumulate(Q5_0Levels(Low(n0), highBits, 0), x, d, s0);
            s1 = Accumulate(Q5_0Levels(Low(n1), highBits, 1), x + 4, d, s1);
            s2 = Accumulate(Q5_0Levels(Low(n2), highBits, 2), x + 8, d, s2);
            s3 = Accumulate(Q5_0Levels(Low(n3), highBits, 3), x + 12, d, s3);
            s4 = Accumulate(Q5_0Levels(High(n0), highBits, 4), x + 16, d, s4);
            s5 = Accumulate(Q5_0Levels(High(n1), highBits, 5), x + 20, d, s5);
            s6 = Accumulate(Q5_0Levels(High(n2), highBits, 6), x + 24, d, s6);
            s7 = Accumulate(Q5_0Levels(High(n3), highBits, 7), x + 28, d, s7);
        }
        // hsum_float_8: (l0 + l4) + (l2 + l6) + ((l1 + l5) + (l3 + l7)), here one row per lane.
        (((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7))).Store(results);
    }

    // sum + d·Σ of each row's four levels × the four activations at x, as ggml's mul_sum_i8_pairs_float: the
    // weights' signs move onto the activations so that vpmaddubsw multiplies |level| (unsigned) by them.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Accumulate(Vector256<sbyte> levels, byte* x, Vector256<float> d, Vector256<float> sum)
    {
        Vector256<sbyte> activations = Vector256.Create(Unsafe.ReadUnaligned<int>(x)).AsSByte();
        Vector256<short> pairs = Avx2.MultiplyAddAdjacent(Avx2.Abs(levels), Avx2.Sign(activations, levels));
        return Fma.MultiplyAdd(d, Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(pairs, Vector256<short>.One)), sum);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Low(Vector256<byte> nibbles) => nibbles & Vector256.Create((byte)0x0F);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> High(Vector256<byte> nibbles) => Vector256.ShiftRightLogical(nibbles.AsUInt16(), 4).AsByte() & Vector256.Create((byte)0x0F);

    // nibble − 16 where the fifth bit is clear (the nibble under 0xF0), the nibble itself where it is set.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> Q5_0Levels(Vector256<byte> nibbles, Vector256<byte> highBits, int run)
    {
        Vector256<byte> bit = Vector256.Create((byte)(1 << run));
        return (nibbles | Vector256.AndNot(Vector256.Create((byte)0xF0), Vector256.Equals(highBits & bit, bit))).AsSByte();
    }
}
