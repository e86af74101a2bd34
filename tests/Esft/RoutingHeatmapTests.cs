using System.Buffers.Binary;
using System.IO.Compression;
using Tune.Trainer;
using Tune.Trainer.Esft;
using Tune.Trainer.Recipes;

namespace Tune.Tests.Esft;

public sealed class RoutingHeatmapTests
{
    [Fact]
    public void TheHeatMapIsAPngOfLayersByExperts()
    {
        ExpertScores scores = EsftFixtures.Scores(new() { [1] = [0.5, 0.5, 0, 0, 0], [2] = [1, 0, 0, 0, 0], [3] = [0.2, 0.2, 0.2, 0.2, 0.2] });
        string path = EsftFixtures.NewDirectory("png") + ".png";
        RoutingHeatmap.Write(path, scores, EsftScoreFunction.Token);
        byte[] png = File.ReadAllBytes(path);

        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
        Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(png, 12, 4));
        int width = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)), height = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20));
        Assert.Equal(5 * RoutingHeatmap.CellSize, width);
        Assert.Equal(3 * RoutingHeatmap.CellSize, height);
        Assert.Equal(new byte[] { 8, 2, 0, 0, 0 }, png[24..29]);

        // Every chunk's CRC is right, and the image data inflate to one filter byte + RGB per scanline.
        var idat = new MemoryStream();
        for (int at = 8; at < png.Length;)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(at));
            string type = System.Text.Encoding.ASCII.GetString(png, at + 4, 4);
            uint crc = PngWriter.Crc32(0xFFFFFFFFu, png.AsSpan(at + 4, 4 + length)) ^ 0xFFFFFFFFu;
            Assert.Equal(BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(at + 8 + length)), crc);
            if (type == "IDAT") idat.Write(png, at + 8, length);
            at += 12 + length;
        }
        idat.Position = 0;
        var pixels = new MemoryStream();
        using (var zlib = new ZLibStream(idat, CompressionMode.Decompress)) zlib.CopyTo(pixels);
        byte[] raw = pixels.ToArray();
        Assert.Equal(height * (1 + width * 3), raw.Length);

        // Layer 2's expert 0 holds the map's highest score (yellow), its expert 1 none (dark blue).
        int stride = 1 + width * 3;
        int Pixel(int layerRow, int expert) => layerRow * RoutingHeatmap.CellSize * stride + 1 + expert * RoutingHeatmap.CellSize * 3;
        Assert.Equal(RoutingHeatmap.Colour(1), (raw[Pixel(1, 0)], raw[Pixel(1, 0) + 1], raw[Pixel(1, 0) + 2]));
        Assert.Equal(RoutingHeatmap.Colour(0), (raw[Pixel(1, 1)], raw[Pixel(1, 1) + 1], raw[Pixel(1, 1) + 2]));
    }

    [Fact]
    public void TheCrcIsTheStandardOne() =>
        Assert.Equal(0xCBF43926u, PngWriter.Crc32(0xFFFFFFFFu, "123456789"u8) ^ 0xFFFFFFFFu);
}
