using System.Runtime.InteropServices;
using Tune.Formats;
using Tune.Tests.Model;

namespace Tune.Tests.Parallel;

/// <summary>
/// The training tests' tiny model changed so that its routers send every token to experts 0-3, rank 0's block at
/// 2 ranks: rank 1 then receives no rows in any exchange, forward or backward, while still taking part in all of them.
/// Coordinate 0 of the residual stream is held at a constant (5 in every embedding row, and no projection writes to
/// it: row 0 of every o_proj and down_proj is zero), and each router's row for an expert of 0-3 adds 50 × that
/// coordinate to its logit, for 4-7 subtracts it; the routers' other weights are scaled down to a tenth, so the
/// 100 × (normed coordinate) gap decides alone. LoRA on o_proj and down_proj starts with B = 0 and stays far too small
/// in a few steps to move coordinate 0 enough to change that.
/// </summary>
internal static class SkewedRoutingModel
{
    public const int LastRoutedExpert = 3;

    private static readonly Lazy<string> Written = new(() =>
    {
        string source = TestModels.Checkpoint(TestModels.Tiny with { VocabSize = 102400, InitializerRange = 0.5 });
        string dir = Path.Combine(TestModels.Root, "skewed-routing");
        Directory.CreateDirectory(dir);
        foreach (string file in Directory.GetFiles(source).Where(f => !f.EndsWith(".safetensors", StringComparison.Ordinal)))
            File.Copy(file, Path.Combine(dir, Path.GetFileName(file)), overwrite: true);
        using var model = SafetensorsFile.Open(Path.Combine(source, "model.safetensors"));
        var tensors = model.Tensors.Select(t =>
        {
            var values = new float[t.ElementCount];
            model.ReadFloat32(t, values);
            Skew(t.Name, t.Shape, values);
            return new TensorSource(t.Name, DType.F32, t.Shape, bytes => MemoryMarshal.AsBytes(values.AsSpan()).CopyTo(bytes));
        }).ToList();
        SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        return dir;
    });

    public static string Checkpoint => Written.Value;

    private static void Skew(string name, long[] shape, float[] values)
    {
        long columns = shape[^1];
        if (name == "model.embed_tokens.weight")
            for (long row = 0; row < shape[0]; row++) values[row * columns] = 5;
        else if (name.EndsWith(".o_proj.weight", StringComparison.Ordinal) || name.EndsWith(".down_proj.weight", StringComparison.Ordinal))
            Array.Clear(values, 0, (int)columns);
        else if (name.EndsWith(".mlp.gate.weight", StringComparison.Ordinal))
            for (long expert = 0; expert < shape[0]; expert++)
            {
                for (long c = 0; c < columns; c++) values[expert * columns + c] *= 0.1f;
                values[expert * columns] = expert <= LastRoutedExpert ? 50 : -50;
            }
    }
}
