using System.Runtime.CompilerServices;

namespace Tune.Quantize;

/// <summary>
/// One q4_K, q5_K or q6_K super-block in the single form the scalar kernel dots with Q8_K activations: unsigned
/// levels L in activation order, an int16 scale per 16 weights and an int16 correction per 16 weights that
/// multiplies the activations' bsums. Then w·x = d_x·(Scale·Σ_g scale_g·Σ L·q + CorrectionScale·Σ_g correction_g·bsum_g):
/// for q4_K/q5_K the correction is the min and CorrectionScale −dmin; for q6_K, whose levels are stored +32, it is
/// 32·scale and CorrectionScale −d. <see cref="SuperBlockDotsAvx2"/> is the vector form.
/// </summary>
internal unsafe struct UnpackedSuperBlock
{
    public const int Size = 256;
    public const int Groups = Size / 16;

    public fixed byte Levels[Size];
    public fixed short Scales[Groups];
    public fixed short Corrections[Groups];
    public float Scale;
    public float CorrectionScale;

    /// <summary>Adds the block's product with one Q8_K activation block to <paramref name="sum"/>.</summary>
    public static void Dot(UnpackedSuperBlock* w, byte* activation, float* sum)
    {
        sbyte* q = (sbyte*)(activation + Q8KActivations.LevelsOffset);
        short* bsums = (short*)(activation + Q8KActivations.SumsOffset);
        int levelSum = 0, correctionSum = 0;
        for (int g = 0; g < Groups; g++)
        {
            int groupSum = 0;
            for (int i = 16 * g; i < 16 * g + 16; i++) groupSum += w->Levels[i] * q[i];
            levelSum += w->Scales[g] * groupSum;
            correctionSum += w->Corrections[g] * bsums[g];
        }
        float d = Unsafe.ReadUnaligned<float>(activation);
        *sum += d * w->Scale * levelSum + d * w->CorrectionScale * correctionSum;
    }
}
