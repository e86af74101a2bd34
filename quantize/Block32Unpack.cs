using System.Runtime.CompilerServices;

namespace Tune.Quantize;

/// <summary>q4_0, q5_0, q5_1 and q8_0 blocks (layouts in their codecs) to <see cref="UnpackedBlock32"/>, for the scalar kernel.</summary>
internal static unsafe class Block32Unpack
{
    public static void Q4_0(byte* block, UnpackedBlock32* u)
    {
        u->Scale = Fp16.ToFloat(Unsafe.ReadUnaligned<ushort>(block));
        u->Offset = 0;
        Nibbles(block + 2, u, -8);
    }

    public static void Q5_0(byte* block, UnpackedBlock32* u)
    {
        u->Scale = Fp16.ToFloat(Unsafe.ReadUnaligned<ushort>(block));
        u->Offset = 0;
        Nibbles(block + 6, u, -16);
        FifthBits(Unsafe.ReadUnaligned<uint>(block + 2), u);
    }

    public static void Q5_1(byte* block, UnpackedBlock32* u)
    {
        u->Scale = Fp16.ToFloat(Unsafe.ReadUnaligned<ushort>(block));
        u->Offset = Fp16.ToFloat(Unsafe.ReadUnaligned<ushort>(block + 2));
        Nibbles(block + 8, u, 0);
        FifthBits(Unsafe.ReadUnaligned<uint>(block + 4), u);
    }

    public static void Q8_0(byte* block, UnpackedBlock32* u)
    {
        u->Scale = Fp16.ToFloat(Unsafe.ReadUnaligned<ushort>(block));
        u->Offset = 0;
        for (int j = 0; j < UnpackedBlock32.Size; j++) u->Levels[j] = (sbyte)block[2 + j];
    }

    // Byte j of the 16 holds level j (low nibble) and level 16 + j (high nibble).
    private static void Nibbles(byte* q, UnpackedBlock32* u, int shift)
    {
        for (int j = 0; j < 16; j++)
        {
            u->Levels[j] = (sbyte)((q[j] & 0x0F) + shift);
            u->Levels[j + 16] = (sbyte)((q[j] >> 4) + shift);
        }
    }

    // Bit j of qh is bit 4 of level j.
    private static void FifthBits(uint qh, UnpackedBlock32* u)
    {
        for (int j = 0; j < UnpackedBlock32.Size; j++) u->Levels[j] += (sbyte)((qh >> j & 1) << 4);
    }
}
