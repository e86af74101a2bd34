using System.Text.Json;

namespace Tune.Trainer.Training;

/// <summary>
/// loss_curve.png from metrics.jsonl: the training loss of every step as a blue line and each evaluation as an orange
/// square, over steps (x) and the losses' range (y), on a light grid of quarters. It carries no text: the numbers are
/// in metrics.jsonl and on the progress lines; the picture is for seeing the shape of a run at a glance.
/// </summary>
public static class LossCurve
{
    public const int Width = 640, Height = 360;
    private const int Margin = 16;

    public static void Write(string pngPath, string metricsPath)
    {
        var train = new List<(int Step, double Loss)>();
        var eval = new List<(int Step, double Loss)>();
        foreach (string line in File.ReadLines(metricsPath))
        {
            using var doc = JsonDocument.Parse(line);
            JsonElement m = doc.RootElement;
            int step = m.GetProperty("step").GetInt32();
            train.Add((step, m.GetProperty("loss").GetDouble()));
            if (m.TryGetProperty("eval_loss", out JsonElement e)) eval.Add((step, e.GetDouble()));
        }
        if (train.Count == 0) throw new InvalidDataException($"{metricsPath}: no steps to plot");

        var rgb = new byte[Width * Height * 3];
        Array.Fill(rgb, (byte)255);
        for (int q = 0; q <= 4; q++)
        {
            int x = Margin + q * (Width - 2 * Margin) / 4, y = Margin + q * (Height - 2 * Margin) / 4;
            byte shade = q is 0 or 4 ? (byte)120 : (byte)225;
            for (int i = Margin; i < Height - Margin; i++) Set(rgb, x, i, shade, shade, shade);
            for (int i = Margin; i < Width - Margin; i++) Set(rgb, i, y, shade, shade, shade);
        }

        double lo = train.Concat(eval).Min(p => p.Loss), hi = train.Concat(eval).Max(p => p.Loss);
        if (hi - lo < 1e-9) (lo, hi) = (lo - 0.5, hi + 0.5);
        int first = train[0].Step, last = Math.Max(train[^1].Step, first + 1);
        (int X, int Y) At((int Step, double Loss) p) =>
            (Margin + (int)Math.Round((p.Step - first) / (double)(last - first) * (Width - 2 * Margin - 1)),
             Margin + (int)Math.Round((hi - p.Loss) / (hi - lo) * (Height - 2 * Margin - 1)));

        for (int i = 1; i < train.Count; i++) Line(rgb, At(train[i - 1]), At(train[i]));
        if (train.Count == 1) Square(rgb, At(train[0]), 1, 31, 119, 180);
        foreach (var p in eval) Square(rgb, At(p), 3, 255, 127, 14);
        PngWriter.Write(pngPath, Width, Height, rgb);
    }

    private static void Set(byte[] rgb, int x, int y, byte r, byte g, byte b)
    {
        if ((uint)x >= Width || (uint)y >= Height) return;
        int at = (y * Width + x) * 3;
        (rgb[at], rgb[at + 1], rgb[at + 2]) = (r, g, b);
    }

    /// <summary>Bresenham, two pixels thick.</summary>
    private static void Line(byte[] rgb, (int X, int Y) from, (int X, int Y) to)
    {
        int dx = Math.Abs(to.X - from.X), dy = -Math.Abs(to.Y - from.Y);
        int sx = from.X < to.X ? 1 : -1, sy = from.Y < to.Y ? 1 : -1, error = dx + dy;
        (int x, int y) = from;
        while (true)
        {
            Set(rgb, x, y, 31, 119, 180);
            Set(rgb, x, y + 1, 31, 119, 180);
            if (x == to.X && y == to.Y) return;
            int twice = 2 * error;
            if (twice >= dy) { error += dy; x += sx; }
            if (twice <= dx) { error += dx; y += sy; }
        }
    }

    private static void Square(byte[] rgb, (int X, int Y) at, int radius, byte r, byte g, byte b)
    {
        for (int y = at.Y - radius; y <= at.Y + radius; y++)
            for (int x = at.X - radius; x <= at.X + radius; x++) Set(rgb, x, y, r, g, b);
    }
}
