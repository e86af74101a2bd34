using Tune.Formats;

namespace Tune.Serve.Gguf;

/// <summary>
/// llama.cpp's CPU backend does not multiply quantised weights by float activations: it first quantises each
/// activation row to the weight type's vec_dot_type (ggml-cpu.c type_traits_cpu: Q8_0 for q4_0/q5_0/q8_0, Q8_1 for
/// q5_1, whose levels are Q8_0's, and Q8_K for the k-quants) and takes an integer dot product. Rounding the activations
/// to exactly those levels here, then using the codecs' float Dot, gives llama.cpp's products up to float summation
/// order, which is what keeps greedy continuations equal.
/// </summary>
internal static class ActivationRounding
{
    private const int Q8_0Block = 32, Q8_KBlock = 256;

    /// <summary>The block the activations are rounded in for weights of <paramref name="weights"/>; 0 = left as they are.</summary>
    public static int BlockFor(GgmlType weights) => weights switch
    {
        GgmlType.Q4_0 or GgmlType.Q5_0 or GgmlType.Q5_1 or GgmlType.Q8_0 => Q8_0Block,
        GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K => Q8_KBlock,
        _ => 0,
    };

    /// <summary>x rounded to the levels llama.cpp's quantised activation row for <paramref name="block"/> holds.</summary>
    public static void Round(ReadOnlySpan<float> x, Span<float> rounded, int block)
    {
        for (int b = 0; b < x.Length; b += block)
        {
            if (block == Q8_0Block) RoundQ8_0(x.Slice(b, block), rounded.Slice(b, block));
            else RoundQ8_K(x.Slice(b, block), rounded.Slice(b, block));
        }
    }

    // x86 quantize_row_q8_0 (AVX2): id = 127/amax, levels rounded to nearest even, d stored as fp16.
    private static void RoundQ8_0(ReadOnlySpan<float> x, Span<float> y)
    {
        float amax = 0;
        foreach (float v in x) amax = MathF.Max(amax, MathF.Abs(v));
        float id = amax != 0 ? 127f / amax : 0f;
        float d = (float)(Half)(amax / 127f);
        for (int j = 0; j < x.Length; j++) y[j] = MathF.Round(x[j] * id, MidpointRounding.ToEven) * d;
    }

    // quantize_row_q8_K_ref (the x86 quantize_row_q8_K calls it): scale from the signed value of largest magnitude,
    // nearest_int (ties to even), levels capped at 127, d = 1/iscale in float32.
    private static void RoundQ8_K(ReadOnlySpan<float> x, Span<float> y)
    {
        float amax = 0, max = 0;
        foreach (float v in x)
        {
            float a = MathF.Abs(v);
            if (a > amax) { amax = a; max = v; }
        }
        if (amax == 0)
        {
            y.Clear();
            return;
        }
        float iscale = -127f / max;
        float d = 1 / iscale;
        for (int j = 0; j < x.Length; j++) y[j] = MathF.Min(127f, MathF.Round(iscale * x[j], MidpointRounding.ToEven)) * d;
    }
}
