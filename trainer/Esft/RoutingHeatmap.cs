using Tune.Trainer.Recipes;

namespace Tune.Trainer.Esft;

/// <summary>
/// The routing heat map: one row per MoE layer (top to bottom in layer order), one column per routed expert, each
/// cell <see cref="CellSize"/> pixels square, coloured from dark blue (score 0) through teal to yellow (the highest
/// score of the map), so experts of different layers compare on one scale.
/// </summary>
public static class RoutingHeatmap
{
    public const int CellSize = 8;

    private static readonly (double At, byte R, byte G, byte B)[] Ramp = [(0, 0x1F, 0x0C, 0x48), (0.5, 0x21, 0x91, 0x8C), (1, 0xFD, 0xE7, 0x25)];

    public static void Write(string path, ExpertScores scores, EsftScoreFunction function)
    {
        int[] layers = [.. scores.Layers.Keys.Order()];
        int width = scores.ExpertCount * CellSize, height = layers.Length * CellSize;
        double max = layers.Max(l => scores.Of(l, function).Max());
        var rgb = new byte[width * height * 3];
        for (int row = 0; row < layers.Length; row++)
        {
            double[] s = scores.Of(layers[row], function);
            for (int e = 0; e < s.Length; e++)
            {
                (byte r, byte g, byte b) = Colour(max > 0 ? s[e] / max : 0);
                for (int y = row * CellSize; y < (row + 1) * CellSize; y++)
                    for (int x = e * CellSize; x < (e + 1) * CellSize; x++)
                    {
                        int i = (y * width + x) * 3;
                        (rgb[i], rgb[i + 1], rgb[i + 2]) = (r, g, b);
                    }
            }
        }
        PngWriter.Write(path, width, height, rgb);
    }

    internal static (byte R, byte G, byte B) Colour(double v)
    {
        int i = v <= Ramp[1].At ? 0 : 1;
        var (lo, hi) = (Ramp[i], Ramp[i + 1]);
        double t = Math.Clamp((v - lo.At) / (hi.At - lo.At), 0, 1);
        static byte Mix(byte a, byte b, double t) => (byte)Math.Round(a + (b - a) * t);
        return (Mix(lo.R, hi.R, t), Mix(lo.G, hi.G, t), Mix(lo.B, hi.B, t));
    }
}
