using TorchSharp;
using Tune.Formats;
using Tune.Model;
using static TorchSharp.torch;

namespace Tune.Tests.Model;

[Collection("torch")]
public sealed class RouterTests
{
    private static readonly DeepSeekV2Config Greedy = TestModels.Tiny with { NRoutedExperts = 8, NumExpertsPerTok = 3 };

    private static (int[] Experts, float[] Weights) Select(float[] scores, DeepSeekV2Config config)
    {
        using var scope = NewDisposeScope();
        (Tensor experts, Tensor weights) = MoeRouter.Select(tensor(scores).view(1, scores.Length), config);
        int[] ids = experts[0].data<long>().ToArray().Select(e => (int)e).ToArray();
        float[] w = weights[0].data<float>().ToArray();
        Array.Sort(ids, w);
        return (ids, w);
    }

    [Fact]
    public void GreedyTakesTheTopKScoresTimesTheScalingFactor()
    {
        float[] scores = [0.05f, 0.30f, 0.02f, 0.25f, 0.08f, 0.20f, 0.06f, 0.04f];
        (int[] experts, float[] weights) = Select(scores, Greedy with { RoutedScalingFactor = 16 });
        Assert.Equal([1, 3, 5], experts);
        Assert.Equal([0.30f * 16, 0.25f * 16, 0.20f * 16], weights);
    }

    [Fact]
    public void NormTopkProbNormalisesAndIgnoresTheScalingFactor()
    {
        float[] scores = [0.05f, 0.30f, 0.02f, 0.25f, 0.08f, 0.20f, 0.06f, 0.04f];
        (_, float[] weights) = Select(scores, Greedy with { NormTopkProb = true, RoutedScalingFactor = 16 });
        Assert.Equal(0.30 / 0.75, weights[0], 6);
        Assert.Equal(0.25 / 0.75, weights[1], 6);
        Assert.Equal(0.20 / 0.75, weights[2], 6);
    }

    [Fact]
    public void NormTopkProbDoesNothingWithASingleExpertPerToken()
    {
        float[] scores = [0.05f, 0.30f, 0.02f, 0.25f, 0.08f, 0.20f, 0.06f, 0.04f];
        (int[] experts, float[] weights) = Select(scores, Greedy with { NumExpertsPerTok = 1, NormTopkProb = true, RoutedScalingFactor = 2 });
        Assert.Equal([1], experts);
        Assert.Equal([0.60f], weights);
    }

    [Fact]
    public void GroupLimitedGreedyPicksOnlyFromTheBestGroups()
    {
        // Groups of two: maxima 0.30, 0.25, 0.26, 0.0. The two best groups are 0 and 2, so expert 2 (0.25) is out
        // even though it is the third-best score overall.
        float[] scores = [0.30f, 0.01f, 0.25f, 0.24f, 0.26f, 0.0f, 0.0f, 0.0f];
        var limited = Greedy with { TopkMethod = "group_limited_greedy", NGroup = 4, TopkGroup = 2 };
        Assert.Equal([0, 1, 4], Select(scores, limited).Experts);
        Assert.Equal([0, 2, 4], Select(scores, Greedy).Experts);
    }

    [Fact]
    public void TiedScoresStillGiveKDistinctExperts()
    {
        float[] scores = Enumerable.Repeat(0.125f, 8).ToArray();
        (int[] experts, float[] weights) = Select(scores, Greedy);
        Assert.Equal(3, experts.Distinct().Count());
        Assert.All(weights, w => Assert.Equal(0.125f, w));
    }

    [Fact]
    public void BalanceLossMatchesAHandComputedValue()
    {
        // One sequence of 2 tokens, E = 4, k = 2. Token 0 picks {0, 1}, token 1 picks {0, 2}.
        // f = count / (T·k/E) = [2, 1, 1, 0] / 1; P = mean scores = [0.35, 0.25, 0.25, 0.15].
        // Σ f·P = 0.70 + 0.25 + 0.25 = 1.20.
        using var scope = NewDisposeScope();
        var routing = new Routing(
            tensor(new long[] { 0, 1, 0, 2 }).view(2, 2),
            ones(2, 2),
            tensor(new float[] { 0.4f, 0.3f, 0.2f, 0.1f, 0.3f, 0.2f, 0.3f, 0.2f }).view(2, 4));
        Assert.Equal(1.2, MoeRouter.BalanceLoss(routing, 1, 2, seqAux: true).item<float>(), 6);
        // Without seq_aux the same batch gives f = N_sel/(N·k)·E = [2,1,1,0]/4·4, the same sum here.
        Assert.Equal(1.2, MoeRouter.BalanceLoss(routing, 1, 2, seqAux: false).item<float>(), 6);
    }
}
