using System.Runtime.CompilerServices;

namespace Tune.Quantize;

/// <summary>
/// One q4_0, q5_0, q5_1 or q8_0 block of 32 in the single form the scalar kernel dots with Q8_0 or Q8_1
/// activations: signed levels, the weights' scale and (q5_1 only) their offset, so w = Scale·L + Offset and
/// w·x = d_x·Scale·Σ L·q + Offset·s_x, s_x being Q8_1's d·Σq. <see cref="Block32DotsAvx2"/> is the vector form.
/// </summary>
internal unsafe struct UnpackedBlock32
{
    public const int Size = 32;

    public fixed sbyte Levels[Size];
    public float Scale;
    public float Offset;

    /// <summary>Adds the block's product with one Q8_0 (<paramref name="withSum"/> false) or Q8_1 activation block to <paramref name="sum"/>.</summary>
    public static void Dot(UnpackedBlock32* w, byte* activation, bool withSum, float* sum)
    {
        sbyte* q = (sbyte*)activation + (withSum ? Q8_1Activations.LevelsOffset : Q8_0Activations.LevelsOffset);
        int levelSum = 0;
        for (int i = 0; i < Size; i++) levelSum += w->Levels[i] * q[i];
        *sum += Fp16.ToFloat(Unsafe.ReadUnaligned<ushort>(activation)) * w->Scale * levelSum;
        if (withSum) *sum += w->Offset * Fp16.ToFloat(Unsafe.ReadUnaligned<ushort>(activation + Q8_1Activations.SumOffset));
    }
}
