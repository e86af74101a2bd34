using System.Text.Json.Nodes;
using Tune.Trainer.Esft;
using Tune.Trainer.Recipes;

namespace Tune.Tests.Esft;

public sealed class ExpertSelectionTests
{
    private static readonly ExpertScores Hand = EsftFixtures.Scores(
        new() { [1] = [0.1, 0.4, 0.3, 0.2], [2] = [0.25, 0.25, 0.25, 0.25] },
        new() { [1] = [0.7, 0.1, 0.1, 0.1], [2] = [0.1, 0.2, 0.3, 0.4] });

    private static int[] Selected(double topP, int layer, EsftScoreFunction function = EsftScoreFunction.Token) =>
        ExpertConfig.Select(Hand, function, topP).Experts[layer];

    [Fact]
    public void ExpertsAreTakenByScoreUntilTheirSumReachesTopP()
    {
        Assert.Equal([1], Selected(0.4, 1));        // 0.4 reaches 0.4 exactly
        Assert.Equal([1, 2], Selected(0.5, 1));     // 0.4, then 0.3
        Assert.Equal([1, 2], Selected(0.7, 1));     // 0.4 + 0.3 reaches 0.7 despite rounding
        Assert.Equal([1, 2, 3], Selected(0.71, 1)); // ids are listed ascending
    }

    [Fact]
    public void EveryLayerKeepsAtLeastOneExpert() => Assert.Equal([1], Selected(0.01, 1));

    [Fact]
    public void TopPOneKeepsEveryExpertWithAScore()
    {
        Assert.Equal([0, 1, 2, 3], Selected(1, 1));
        Assert.Equal([0, 1, 2, 3], Selected(1, 2));
    }

    [Fact]
    public void TiesGoToTheLowerExpertId()
    {
        Assert.Equal([0, 1], Selected(0.5, 2));
        Assert.Equal([0], Selected(0.2, 2));
    }

    [Fact]
    public void TheGateScoreRanksByGateWeight()
    {
        Assert.Equal([0], Selected(0.7, 1, EsftScoreFunction.Gate));
        Assert.Equal([2, 3], Selected(0.7, 2, EsftScoreFunction.Gate));
    }

    [Fact]
    public void TheConfigIsEsftsExpertCfgJson()
    {
        string path = EsftFixtures.NewDirectory("cfg") + ".json";
        ExpertConfig.Select(Hand, EsftScoreFunction.Token, 0.5).Save(path);
        JsonObject json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        Assert.Equal(["experts", "shared_experts", "non_expert_modules"], json.Select(kv => kv.Key));
        Assert.Equal("[1,2]", json["experts"]!["1"]!.ToJsonString());
        Assert.Equal("[0,1]", json["experts"]!["2"]!.ToJsonString());
        Assert.False(json["shared_experts"]!.GetValue<bool>());
        Assert.False(json["non_expert_modules"]!.GetValue<bool>());
    }

    [Fact]
    public void ScoresSurviveTheirJsonFile()
    {
        string path = EsftFixtures.NewDirectory("scores") + ".json";
        Hand.Save(path);
        ExpertScores read = ExpertScores.Load(path);
        Assert.Equal(Hand.Tokens, read.Tokens);
        Assert.Equal(Hand.TopK, read.TopK);
        foreach (int layer in new[] { 1, 2 })
        {
            Assert.Equal(Hand.Layers[layer].Gate, read.Layers[layer].Gate);
            Assert.Equal(Hand.Layers[layer].Token, read.Layers[layer].Token);
        }
    }

    [Fact]
    public void ABadScoresFileNamesTheField()
    {
        string path = EsftFixtures.NewDirectory("bad") + ".json";
        Hand.Save(path);
        File.WriteAllText(path, File.ReadAllText(path).Replace("0.4", "-0.4"));
        var e = Assert.Throws<FormatException>(() => ExpertScores.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("layers.1.", e.Message);
    }
}
