using System.Runtime.InteropServices;
using Tune.Convert;
using Tune.Formats;

namespace Tune.Tests.Convert;

/// <summary>The converter's Q8_0 blocks against ggml's own quantiser (libggml-base from the llama.cpp oracle): identical bytes.</summary>
public sealed unsafe class Q8_0BlocksTests
{
    private static string GgmlBase => Path.Combine(RepoPaths.Root, "oracle", "node_modules", "@node-llama-cpp", "linux-x64", "bins", "linux-x64", "libggml-base.so");

    private static byte[] Ggml(float[] values)
    {
        if (!File.Exists(GgmlBase)) Assert.Fail($"{GgmlBase} is missing: the llama.cpp oracle is not installed; run oracle/setup.sh");
        IntPtr library = NativeLibrary.Load(GgmlBase);
        var quantize = (delegate* unmanaged<int, float*, byte*, long, long, long, float*, nuint>)NativeLibrary.GetExport(library, "ggml_quantize_chunk");
        var blocks = new byte[values.Length / 32 * 34];
        fixed (float* src = values)
        fixed (byte* dst = blocks)
        {
            nuint written = quantize((int)GgmlType.Q8_0, src, dst, 0, 1, values.Length, null);
            Assert.Equal((nuint)blocks.Length, written);
        }
        return blocks;
    }

    private static byte[] Ours(float[] values)
    {
        var blocks = new byte[values.Length / 32 * 34];
        Assert.Equal(blocks.Length, Q8_0Blocks.Encode(values, blocks));
        return blocks;
    }

    [Fact]
    public void BlocksAreByteIdenticalToGgml()
    {
        var random = new Random(3);
        var cases = new List<float[]>
        {
            new float[64],
            Enumerable.Repeat(1.0f, 32).ToArray(),
            Enumerable.Range(0, 32).Select(i => i - 16f).ToArray(),
            Enumerable.Range(0, 32).Select(i => (i - 16) * 127f / 16 / 3).ToArray(),   // values on the .5 rounding boundary
            Enumerable.Range(0, 32).Select(i => i == 5 ? 3e4f : 1e-6f).ToArray(),
        };
        for (int c = 0; c < 200; c++)
        {
            float scale = MathF.Pow(10, random.Next(-5, 4));
            cases.Add(Enumerable.Range(0, 256).Select(_ => (float)(random.NextDouble() * 2 - 1) * scale).ToArray());
        }
        foreach (float[] values in cases) Assert.Equal(Ggml(values), Ours(values));
    }

    [Fact]
    public void PartialBlocksAreRejected() =>
        Assert.Throws<ArgumentException>(() => Q8_0Blocks.Encode(new float[40], new byte[68]));
}
