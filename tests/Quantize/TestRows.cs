namespace Tune.Tests.Quantize;

/// <summary>Seeded rows for the codec tests: the shapes and value ranges quantisation meets, and its edge cases.</summary>
internal static class TestRows
{
    /// <summary>A named set of rows of equal width, row-major.</summary>
    public sealed record Case(string Name, int Width, float[] Values)
    {
        public int Rows => Values.Length / Width;

        public override string ToString() => $"{Name} ({Rows}×{Width})";
    }

    public static float[] Normal(int count, int seed, float sigma = 1, float mean = 0)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            double u1 = 1 - random.NextDouble(), u2 = random.NextDouble();
            values[i] = mean + sigma * (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return values;
    }

    /// <summary>
    /// The cases every codec must reproduce byte for byte. <paramref name="blockSize"/> picks real widths the type
    /// accepts (DeepSeek-V2-Lite: hidden 2048, kv_lora 512; ffn 1408 and 10944 and head 128 only for 32-blocks).
    /// </summary>
    public static IEnumerable<Case> ForBlockSize(int blockSize)
    {
        int w = 2048;
        yield return new("normal σ=1", w, Normal(4 * w, 1));
        yield return new("normal σ=0.02 (weights)", w, Normal(4 * w, 2, 0.02f));
        yield return new("normal with offset", w, Normal(2 * w, 3, 0.5f, 1.5f));
        yield return new("outliers", w, WithOutliers(Normal(4 * w, 4, 0.02f), 5));
        yield return new("all zero", w, new float[2 * w]);
        yield return new("negative zero", w, Enumerable.Repeat(-0f, w).ToArray());
        yield return new("constant positive", w, Enumerable.Repeat(0.37f, w).ToArray());
        yield return new("constant negative", w, Enumerable.Repeat(-2.5f, w).ToArray());
        yield return new("negative only", w, Normal(2 * w, 6).Select(v => -MathF.Abs(v)).ToArray());
        yield return new("positive only", w, Normal(2 * w, 7).Select(v => MathF.Abs(v)).ToArray());
        foreach (float scale in new[] { 1e-30f, 1e-38f, 1e-43f, 6e4f, 65504f * 127, 1e30f, 3e38f })
            yield return new($"normal × {scale:G3}", w, Normal(w, 8).Select(v => Math.Clamp(v, -4, 4) * (scale / 4)).ToArray());
        yield return new("fp16 max", w, Normal(w, 9).Select(v => v < 0 ? -65504f : 65504f).ToArray());
        yield return new("mixed magnitudes per block", w, MixedMagnitudes(w, 10));
        yield return new("sparse 90%", w, Sparse(Normal(2 * w, 11), 12));
        yield return new("one-hot", w, OneHot(w));
        yield return new("integers", w, Normal(w, 13, 4).Select(v => MathF.Round(v)).ToArray());
        yield return new("Cauchy tails", w, Cauchy(2 * w, 20));
        yield return new("random scales and offsets", 256, RandomScalesAndOffsets(1000, 14));
        if (blockSize == 32)
        {
            yield return new("real 1408", 1408, Normal(3 * 1408, 15, 0.02f));
            yield return new("real 10944", 10944, Normal(3 * 10944, 16, 0.02f));
            yield return new("real 128", 128, Normal(8 * 128, 17, 0.05f));
            yield return new("ties at half integers", 32, HalfIntegerTies());
        }
        else
        {
            yield return new("real 512", 512, Normal(4 * 512, 18, 0.02f));
            yield return new("small sub-block next to large", 256, SmallNextToLarge());
        }
    }

    private static float[] WithOutliers(float[] values, int seed)
    {
        var random = new Random(seed);
        for (int k = 0; k < values.Length / 300; k++) values[random.Next(values.Length)] *= 100 + random.Next(900);
        return values;
    }

    // Each 32 weights at their own scale from 1e-6 to 1e3: sub-blocks whose stored scale rounds to zero.
    private static float[] MixedMagnitudes(int count, int seed)
    {
        float[] values = Normal(count, seed);
        for (int i = 0; i < count; i++) values[i] *= MathF.Pow(10, i / 32 % 10 - 6);
        return values;
    }

    private static float[] Cauchy(int count, int seed)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = 0.01f * (float)Math.Tan(Math.PI * (random.NextDouble() - 0.5));
        return values;
    }

    private static float[] Sparse(float[] values, int seed)
    {
        var random = new Random(seed);
        for (int i = 0; i < values.Length; i++)
            if (random.NextDouble() < 0.9) values[i] = 0;
        return values;
    }

    private static float[] OneHot(int count)
    {
        var values = new float[count];
        for (int i = 0; i < count; i += 97) values[i] = i % 2 == 0 ? 1 : -1;
        return values;
    }

    private static float[] RandomScalesAndOffsets(int rows, int seed)
    {
        var random = new Random(seed);
        float[] values = Normal(rows * 256, seed);
        for (int r = 0; r < rows; r++)
        {
            float scale = MathF.Pow(10, (float)(random.NextDouble() * 6 - 4));
            float offset = random.Next(3) == 0 ? (float)(random.NextDouble() * 4 - 2) * scale : 0;
            for (int i = 0; i < 256; i++) values[r * 256 + i] = values[r * 256 + i] * scale + offset;
        }
        return values;
    }

    // Q8_0 with amax = 127 has d = 1: every other weight is then a rounding tie.
    private static float[] HalfIntegerTies()
    {
        var values = new float[4 * 32];
        for (int i = 0; i < values.Length; i++)
            values[i] = i % 32 == 0 ? 127 : (i % 2 == 0 ? 1 : -1) * (i % 61 + 0.5f);
        return values;
    }

    // One zero-ish sub-block beside large ones: its stored scale is 0 and it keeps the search's levels.
    private static float[] SmallNextToLarge()
    {
        float[] values = Normal(4 * 256, 19, 10);
        for (int b = 0; b < 4; b++)
            for (int i = 0; i < 32; i++)
                values[b * 256 + 32 * (b + 1) + i] *= 1e-7f;
        return values;
    }
}
