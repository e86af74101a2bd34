using TorchSharp;
using Tune.Formats;
using Tune.Model;
using static TorchSharp.torch;

namespace Tune.Tests.Model;

[Collection("torch")]
public sealed class YarnRopeTests
{
    private static readonly RopeScaling LiteYarn = new("yarn", 40, 4096, 32, 1, 0.707, 0.707);

    [Fact]
    public void PlainRopeFrequenciesAreThetaPowers()
    {
        float[] inv = YarnRope.InverseFrequencies(4, 10000, null);
        Assert.Equal([1f, 0.01f], inv);
    }

    [Fact]
    public void YarnBlendsBetweenTheCorrectionBoundsOfLite()
    {
        // cd(32) = 64·ln(4096/(2π·32))/(2·ln 10000) = 10.47 → low 10; cd(1) = 22.51 → high 23.
        float[] inv = YarnRope.InverseFrequencies(64, 10000, LiteYarn);
        double Extra(int i) => Math.Pow(10000, -2.0 * i / 64);
        Assert.Equal(1.0, inv[0], 6);
        Assert.Equal(Extra(10), inv[10], 6);                      // ramp 0: original frequency
        Assert.Equal(Extra(31) / 40, inv[31], 9);                 // ramp 1: interpolated by 1/40
        double ramp = (16 - 10) / 13.0;
        Assert.Equal(Extra(16) / 40 * ramp + Extra(16) * (1 - ramp), inv[16], 7);
    }

    [Fact]
    public void SoftmaxScaleOfLiteIncludesMscaleSquared()
    {
        var lite = new DeepSeekV2Config { QkNopeHeadDim = 128, QkRopeHeadDim = 64, RopeScaling = LiteYarn };
        var rope = new YarnRope(lite);
        Assert.Equal(1.2608038, YarnRope.Mscale(40, 0.707), 6);
        Assert.Equal(0.1147214, rope.SoftmaxScale, 6);
        Assert.Equal(1.0, rope.CosSinScale, 12);
        var unequal = new YarnRope(lite with { RopeScaling = LiteYarn with { Mscale = 1.0 } });
        Assert.Equal(YarnRope.Mscale(40, 1.0) / YarnRope.Mscale(40, 0.707), unequal.CosSinScale, 12);
        var plain = new YarnRope(lite with { RopeScaling = null });
        Assert.Equal(1 / Math.Sqrt(192), plain.SoftmaxScale, 12);
    }

    [Fact]
    public void AdjacentPairsRotateByPositionTimesFrequency()
    {
        var rope = new YarnRope(new DeepSeekV2Config { QkNopeHeadDim = 4, QkRopeHeadDim = 4, RopeScaling = null });
        using var scope = NewDisposeScope();
        (Tensor cos, Tensor sin) = rope.Angles(start: 3, count: 1, CPU);
        float[] y = YarnRope.Apply(tensor(new float[] { 1, 0, 0, 1 }).view(1, 4), cos, sin).data<float>().ToArray();
        // pair 0 = (1, 0) by 3·1 rad; pair 1 = (0, 1) by 3·0.01 rad.
        Assert.Equal(Math.Cos(3), y[0], tolerance: 1e-6);
        Assert.Equal(Math.Sin(3), y[1], tolerance: 1e-6);
        Assert.Equal(-Math.Sin(0.03), y[2], tolerance: 1e-6);
        Assert.Equal(Math.Cos(0.03), y[3], tolerance: 1e-6);
    }
}
