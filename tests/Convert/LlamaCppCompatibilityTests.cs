using Tune.Convert;
using Tune.Formats;
using Tune.Tests.Formats;

namespace Tune.Tests.Convert;

/// <summary>What the converter writes where llama.cpp's deepseek2 runtime departs from the HF model (gguf.md §2.7).</summary>
public sealed class LlamaCppCompatibilityTests
{
    private static readonly DeepSeekV2Config Lite = DeepSeekV2Config.Parse(CoderV2LiteConfig.Json, "lite config.json");

    [Fact]
    public void TheLiteModelNeedsNothingSpecial()
    {
        var c = LlamaCppCompatibility.For(Lite);
        Assert.Empty(c.Notes);
        Assert.Empty(c.Warnings);
        Assert.False(c.ScalesQuery);
        Assert.False(c.ExpertWeightsNorm);
        Assert.Equal(1.0f, c.ExpertWeightsScale);
        Assert.Equal((1u, 1u), c.ExpertGroups);
        Assert.Null(c.QLoraRank);
    }

    [Fact]
    public void NormalisedWeightsIgnoreTheScalingFactorAsTheHfModelDoes()
    {
        var c = LlamaCppCompatibility.For(Lite with { NormTopkProb = true, RoutedScalingFactor = 16 });
        Assert.True(c.ExpertWeightsNorm);
        Assert.Equal(1.0f, c.ExpertWeightsScale);
        Assert.Contains(c.Notes, n => n.Contains("ignores the factor"));
    }

    [Fact]
    public void OneExpertPerTokenIsNeverNormalisedButStillScaled()
    {
        var c = LlamaCppCompatibility.For(Lite with { NormTopkProb = true, RoutedScalingFactor = 2, NumExpertsPerTok = 1 });
        Assert.False(c.ExpertWeightsNorm);
        Assert.Equal(2.0f, c.ExpertWeightsScale);
    }

    [Fact]
    public void WithoutNormalisationTheScalingFactorIsWrittenAsIs() =>
        Assert.Equal(16.0f, LlamaCppCompatibility.For(Lite with { RoutedScalingFactor = 16 }).ExpertWeightsScale);

    [Fact]
    public void GroupLimitedRoutingIsWrittenAndWarnedAbout()
    {
        var c = LlamaCppCompatibility.For(Lite with { TopkMethod = "group_limited_greedy", NGroup = 8, TopkGroup = 3 });
        Assert.Equal((8u, 3u), c.ExpertGroups);
        Assert.Contains(c.Warnings, w => w.Contains("top-2") && w.Contains("best score"));
    }

    [Theory]
    [InlineData("greedy", 8, 3)]
    [InlineData("group_limited_greedy", 4, 4)]
    [InlineData("group_limited_greedy", 64, 8)]
    public void GroupsThatDoNotLimitTheHfRoutingAreWrittenAsOneGroup(string method, int groups, int kept)
    {
        var c = LlamaCppCompatibility.For(Lite with { TopkMethod = method, NGroup = groups, TopkGroup = kept });
        Assert.Equal((1u, 1u), c.ExpertGroups);
        Assert.Empty(c.Warnings);
    }

    [Fact]
    public void EqualMscalesNeedNoQueryScaling()
    {
        var c = LlamaCppCompatibility.For(Lite);
        Assert.Equal(1.0, c.QueryScale.Nope, 6);
        Assert.Equal(1.0, c.QueryScale.Rope, 6);
    }

    [Fact]
    public void DifferentMscalesScaleTheRopeRowsByTheSquaredCosSinFactor()
    {
        var c = LlamaCppCompatibility.For(Lite with { RopeScaling = new RopeScaling("yarn", 40, 4096, 32, 1, 1.0, 0.707) });
        double cosSin = (0.1 * 1.0 * Math.Log(40) + 1) / (0.1 * 0.707 * Math.Log(40) + 1);
        Assert.True(c.ScalesQuery);
        Assert.Equal(1.0, c.QueryScale.Nope, 5);
        Assert.Equal(cosSin * cosSin, c.QueryScale.Rope, 5);
    }

    [Fact]
    public void WithoutMscaleAllDimLlamaCppsOwnYarnMagnitudeIsUndone()
    {
        // mscale_all_dim absent: HF uses the plain 1/√d scale and cos/sin × mscale(f, mscale); llama.cpp's rope then
        // carries g = 1 + 0.1·ln f on q and k and its kq_scale g², which the query rows must cancel.
        var c = LlamaCppCompatibility.For(Lite with { RopeScaling = new RopeScaling("yarn", 40, 4096, 32, 1, 1.0, 0) });
        double g = 1 + 0.1 * Math.Log(40);
        Assert.Equal(1 / (g * g), c.QueryScale.Nope, 5);
        Assert.Equal(g * g / (g * g * g * g), c.QueryScale.Rope, 5);
    }

    [Fact]
    public void WhatNoFileCanFixIsWarnedAbout()
    {
        var c = LlamaCppCompatibility.For(Lite with { RmsNormEps = 1e-5, RopeScaling = new RopeScaling("yarn", 40, 4096, 16, 2, 0.707, 0.707) });
        Assert.Contains(c.Warnings, w => w.Contains("rms_norm_eps"));
        Assert.Contains(c.Warnings, w => w.Contains("beta_fast 16"));
    }

    [Fact]
    public void DenseLayersBetweenMoeLayersCannotBeDescribed()
    {
        var e = Assert.Throws<FormatException>(() => LlamaCppCompatibility.For(Lite with { MoeLayerFreq = 2 }));
        Assert.Contains("moe_layer_freq", e.Message);
    }
}
