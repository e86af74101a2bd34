using TorchSharp;
using Tune.Formats;
using Tune.Model;
using Tune.Model.Tokenization;
using Tune.Trainer.Data;
using Tune.Trainer.Recipes;
using Tune.Trainer.Training;
using static TorchSharp.torch;

namespace Tune.Trainer.Esft;

/// <summary>
/// `tune experts score`: runs the frozen base model (eval, no grad) over data rows, one row at a time with the
/// training mask, and accumulates what each MoE layer's router chose for every real token (prompt and completion
/// alike, as ESFT's get_expert_scores.py logs them; end-of-row padding is left out).
/// </summary>
public static class ExpertScorer
{
    /// <summary>
    /// Loads the model and the training rows of <paramref name="data"/> and scores the first <paramref name="maxRows"/>
    /// rows (all of one epoch when null).
    /// </summary>
    public static async Task<ExpertScores> ScoreAsync(string modelDirectory, DataRecipe data, TorchRuntime runtime, long? maxRows,
        Action<long, long>? progress = null, CancellationToken cancel = default)
    {
        DeepSeekTokenizer tokenizer = DeepSeekTokenizer.Load(modelDirectory);
        TrainingData rows = await TrainingData.LoadAsync(data, tokenizer, Environment.CurrentDirectory, cancel);
        using var checkpoint = CheckpointDirectory.Open(modelDirectory);
        using var model = DeepSeekV2ForCausalLM.Load(checkpoint, runtime);
        return Score(model, rows.Train, Math.Min(maxRows ?? long.MaxValue, rows.Train.RowsPerEpoch), modelDirectory, progress);
    }

    /// <summary>Scores the first <paramref name="rows"/> rows of <paramref name="data"/>; progress gets (rows done, rows).</summary>
    public static ExpertScores Score(DeepSeekV2ForCausalLM model, PackedDataset data, long rows, string modelName,
        Action<long, long>? progress = null)
    {
        if (rows <= 0) throw new ArgumentOutOfRangeException(nameof(rows), rows, "--max-rows: must be at least 1");
        int experts = model.Config.NRoutedExperts ?? throw new InvalidDataException($"{modelName}: config.json has no routed experts to score");
        var layers = Enumerable.Range(0, model.Layers.Count).Where(i => model.Layers[i].Moe is not null).ToArray();
        var gate = layers.ToDictionary(l => l, _ => new double[experts]);
        var counts = layers.ToDictionary(l => l, _ => new double[experts]);
        long realTokens = 0, tokens = 0;
        var observers = layers.ToDictionary(l => l, l => (Action<Routing>)(routing => Accumulate(routing, realTokens, gate[l], counts[l])));
        foreach (int l in layers) model.Layers[l].Moe!.RoutingObserver += observers[l];
        try
        {
            model.eval();
            using var noGrad = no_grad();
            for (long r = 0; r < rows; r++)
            {
                using var scope = NewDisposeScope();
                PackedRow row = data.Row(r);
                realTokens = RealLength(row, data.PadId);
                tokens += realTokens;
                using TrainingBatch batch = TrainingBatch.From([row], model.Runtime.Device);
                model.Forward(batch.Ids, mask: batch.Mask);
                progress?.Invoke(r + 1, rows);
            }
        }
        finally
        {
            foreach (int l in layers) model.Layers[l].Moe!.RoutingObserver -= observers[l];
        }
        if (tokens == 0) throw new InvalidDataException("the data rows hold only padding: nothing to score");
        var scores = layers.ToDictionary(l => l, l => new LayerExpertScores(Normalised(gate[l]), Normalised(counts[l])));
        return new ExpertScores(modelName, tokens, rows, model.Config.NumExpertsPerTok, experts, scores);
    }

    private static void Accumulate(Routing routing, long realTokens, double[] gate, double[] counts)
    {
        using var scope = NewDisposeScope();
        Tensor chosen = routing.Experts.narrow(0, 0, realTokens).flatten().cpu();
        Tensor weights = routing.Weights.narrow(0, 0, realTokens).flatten().to(ScalarType.Float64).cpu();
        double[] g = zeros(gate.Length, ScalarType.Float64).index_add_(0, chosen, weights, 1.0).data<double>().ToArray();
        double[] c = zeros(counts.Length, ScalarType.Float64).index_add_(0, chosen, ones_like(weights), 1.0).data<double>().ToArray();
        for (int e = 0; e < gate.Length; e++)
        {
            gate[e] += g[e];
            counts[e] += c[e];
        }
    }

    /// <summary>
    /// Tokens before the row's padding: padding is the row's last segment when it is all pad ids and has no target
    /// (a document piece like that would carry nothing to score anyway).
    /// </summary>
    internal static int RealLength(PackedRow row, int padId)
    {
        int last = row.SegmentIds[^1], start = row.Length;
        while (start > 0 && row.SegmentIds[start - 1] == last) start--;
        for (int t = start; t < row.Length; t++)
            if (row.Ids[t] != padId || row.LossMask[t]) return row.Length;
        return start;
    }

    /// <summary>Within one layer: the scores sum to 1 (ESFT's script sums over layers instead; the issue asks for per layer).</summary>
    private static double[] Normalised(double[] values)
    {
        double sum = values.Sum();
        return sum > 0 ? values.Select(v => v / sum).ToArray() : values;
    }
}
