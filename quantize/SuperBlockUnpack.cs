using System.Runtime.CompilerServices;

namespace Tune.Quantize;

/// <summary>
/// q4_K, q5_K and q6_K super-blocks (layouts in <see cref="Q4KCodec"/>, <see cref="Q5KCodec"/>, <see cref="Q6KCodec"/>)
/// to <see cref="UnpackedSuperBlock"/>, for the scalar kernel.
/// </summary>
internal static unsafe class SuperBlockUnpack
{
    public const int Q4KLevels = ScaleMinSuperBlock.HeaderBytes;
    public const int Q5KHighBits = ScaleMinSuperBlock.HeaderBytes, Q5KLevels = Q5KHighBits + 32;
    public const int Q6KHighBits = 128, Q6KScales = 192, Q6KScale = 208;

    public static void Q4K(byte* block, UnpackedSuperBlock* u)
    {
        ScaleMin(block, u);
        byte* q = block + Q4KLevels;
        for (int chunk = 0; chunk < 4; chunk++)
            for (int l = 0; l < 32; l++)
            {
                u->Levels[64 * chunk + l] = (byte)(q[32 * chunk + l] & 0x0F);
                u->Levels[64 * chunk + 32 + l] = (byte)(q[32 * chunk + l] >> 4);
            }
    }

    // Q4_K's nibbles, plus 16 where the level's bit in qh (bit k of qh[l] for the k-th 32 levels) is set.
    public static void Q5K(byte* block, UnpackedSuperBlock* u)
    {
        ScaleMin(block, u);
        byte* q = block + Q5KLevels, qh = block + Q5KHighBits;
        for (int chunk = 0; chunk < 4; chunk++)
            for (int l = 0; l < 32; l++)
            {
                u->Levels[64 * chunk + l] = (byte)((q[32 * chunk + l] & 0x0F) | (qh[l] >> 2 * chunk & 1) << 4);
                u->Levels[64 * chunk + 32 + l] = (byte)((q[32 * chunk + l] >> 4) | (qh[l] >> 2 * chunk + 1 & 1) << 4);
            }
    }

    // Levels stay at q + 32 (0..63); the −32 becomes the correction 32·scale against the activations' bsums.
    public static void Q6K(byte* block, UnpackedSuperBlock* u)
    {
        sbyte* scales = (sbyte*)(block + Q6KScales);
        for (int g = 0; g < UnpackedSuperBlock.Groups; g++)
        {
            u->Scales[g] = scales[g];
            u->Corrections[g] = (short)(32 * scales[g]);
        }
        u->Scale = Fp16.ToFloat(Unsafe.ReadUnaligned<ushort>(block + Q6KScale));
        u->CorrectionScale = -u->Scale;
        for (int half = 0; half < 2; half++)
        {
            byte* ql = block + 64 * half, qh = block + Q6KHighBits + 32 * half;
            byte* levels = u->Levels + 128 * half;
            for (int l = 0; l < 32; l++)
            {
                levels[l] = (byte)((ql[l] & 0x0F) | (qh[l] & 3) << 4);
                levels[l + 32] = (byte)((ql[l + 32] & 0x0F) | (qh[l] >> 2 & 3) << 4);
                levels[l + 64] = (byte)((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4);
                levels[l + 96] = (byte)((ql[l + 32] >> 4) | (qh[l] >> 6 & 3) << 4);
            }
        }
    }

    /// <summary>
    /// The 6-bit scales and mins of the eight sub-blocks of a Q4_K/Q5_K header as the bytes of two ulongs. The 12
    /// packed bytes are read as three words: for j &lt; 4 the low 6 bits of bytes j (scale) and j + 4 (min), for
    /// j ≥ 4 a nibble of byte j + 4 under the top 2 bits of byte j − 4 (scale) or j (min).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (ulong Scales, ulong Mins) ScalesAndMins(byte* block)
    {
        const uint Low6 = 0x3F3F3F3F, Low4 = 0x0F0F0F0F, Low2 = 0x03030303;
        uint w0 = Unsafe.ReadUnaligned<uint>(block + 4), w1 = Unsafe.ReadUnaligned<uint>(block + 8), w2 = Unsafe.ReadUnaligned<uint>(block + 12);
        ulong scales = (w0 & Low6) | (ulong)((w2 & Low4) | (w0 >> 6 & Low2) << 4) << 32;
        ulong mins = (w1 & Low6) | (ulong)((w2 >> 4 & Low4) | (w1 >> 6 & Low2) << 4) << 32;
        return (scales, mins);
    }

    // Each 32-weight sub-block's scale on both its 16-weight groups, its min as the correction of both, d and −dmin.
    private static void ScaleMin(byte* block, UnpackedSuperBlock* u)
    {
        (ulong scales, ulong mins) = ScalesAndMins(block);
        for (int g = 0; g < UnpackedSuperBlock.Groups; g++)
        {
            u->Scales[g] = (byte)(scales >> 8 * (g / 2));
            u->Corrections[g] = (byte)(mins >> 8 * (g / 2));
        }
        u->Scale = Fp16.ToFloat(Unsafe.ReadUnaligned<ushort>(block));
        u->CorrectionScale = -Fp16.ToFloat(Unsafe.ReadUnaligned<ushort>(block + 2));
    }
}
