using TorchSharp;
using Tune.Formats;
using Tune.Model;
using Tune.Model.Tokenization;
using Tune.Tests.Model;
using Tune.Trainer.Data;
using Tune.Trainer.Esft;
using Tune.Trainer.Recipes;
using static TorchSharp.torch;

namespace Tune.Tests.Esft;

[Collection("torch")]
public sealed class ExpertScorerTests
{
    private static async Task<TrainingData> Data(string model, int seqLen = 32) =>
        await TrainingData.LoadAsync(RecipeLoader.Parse($"model: {{path: {model}}}\n" + EsftFixtures.DataSection(seqLen), "d.yaml").Data,
            DeepSeekTokenizer.Load(model), Environment.CurrentDirectory);

    [Fact]
    public async Task WhenEveryTokenPicksEveryExpertTheTokenScoresAreEqual()
    {
        DeepSeekV2Config all = EsftFixtures.Config with { NumExpertsPerTok = 8 };
        string model = TestModels.Checkpoint(all);
        TrainingData data = await Data(model);
        ExpertScores scores = await ExpertScorer.ScoreAsync(model, RecipeLoader.Parse($"model: {{path: {model}}}\n" + EsftFixtures.DataSection(), "d.yaml").Data,
            TorchRuntime.Cpu, maxRows: null);

        Assert.Equal([1, 2], scores.Layers.Keys.Order());
        Assert.Equal(8, scores.TopK);
        Assert.Equal(data.Train.RowsPerEpoch, scores.Rows);
        Assert.Equal(data.Train.TokenCount, scores.Tokens);   // padding is not scored
        foreach (LayerExpertScores layer in scores.Layers.Values)
        {
            Assert.All(layer.Token, s => Assert.Equal(0.125, s));
            Assert.Equal(1, layer.Gate.Sum(), 12);
            Assert.True(layer.Gate.Distinct().Count() > 1, "gate scores follow the router's probabilities, not the count");
        }
    }

    [Fact]
    public async Task ScoresAreTheRoutedCountsAndWeightsNormalisedPerLayer()
    {
        string model = EsftFixtures.Model;
        TrainingData data = await Data(model, seqLen: 16);
        PackedRow first = data.Train.Row(0);
        Assert.Equal(first.Length, ExpertScorer.RealLength(first, data.Train.PadId));   // a full row: every routed token counts

        using var checkpoint = CheckpointDirectory.Open(model);
        using var lm = DeepSeekV2ForCausalLM.Load(checkpoint, TorchRuntime.Cpu);
        var counts = new Dictionary<int, double[]> { [1] = new double[8], [2] = new double[8] };
        var gate = new Dictionary<int, double[]> { [1] = new double[8], [2] = new double[8] };
        foreach (int l in counts.Keys)
            lm.Layers[l].Moe!.RoutingObserver += routing =>
            {
                long[] experts = routing.Experts.data<long>().ToArray();
                float[] weights = routing.Weights.data<float>().ToArray();
                for (int i = 0; i < experts.Length; i++)
                {
                    counts[l][experts[i]]++;
                    gate[l][experts[i]] += weights[i];
                }
            };
        ExpertScores scores = ExpertScorer.Score(lm, data.Train, rows: 1, "tiny");

        Assert.Equal(16, scores.Tokens);
        foreach (int l in counts.Keys)
        {
            Assert.Equal(16 * 3, counts[l].Sum());
            for (int e = 0; e < 8; e++)
            {
                Assert.Equal(counts[l][e] / 3 / 16, scores.Layers[l].Token[e], 12);
                Assert.Equal(gate[l][e] / gate[l].Sum(), scores.Layers[l].Gate[e], 6);
            }
        }
    }

    [Fact]
    public void PaddingAtTheEndOfARowIsNotAToken()
    {
        var row = new PackedRow([5, 6, 7, 1, 1, 1], [true, true, true, false, false, false], [0, 0, 0, 1, 1, 1]);
        Assert.Equal(3, ExpertScorer.RealLength(row, padId: 1));
        Assert.Equal(6, ExpertScorer.RealLength(row, padId: 2));
        var full = new PackedRow([5, 6, 1, 1], [true, true, true, true], [0, 0, 1, 1]);
        Assert.Equal(4, ExpertScorer.RealLength(full, padId: 1));
    }
}
