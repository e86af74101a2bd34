using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tune.Formats;
using Tune.Trainer.Recipes;

namespace Tune.Trainer.Esft;

/// <summary>
/// The routed experts ESFT trains, per layer, in ESFT's expert_cfg.json format:
/// <c>{"experts": {"1": [ids]}, "shared_experts": false, "non_expert_modules": false}</c> (shared experts, attention,
/// router and embeddings are not trained in full; LoRA elsewhere is the adapter's business, not this file's).
/// </summary>
public sealed record ExpertConfig(IReadOnlyDictionary<int, int[]> Experts)
{
    public const string FileName = "expert_cfg.json";

    /// <summary>
    /// Scores are read back from decimal JSON, so a cumulative sum that should equal top_p can land a rounding
    /// error below it (0.1 + 0.2 &lt; 0.3); this much short still counts as reached.
    /// </summary>
    private const double Tolerance = 1e-9;

    public int Count => Experts.Values.Sum(e => e.Length);

    public bool Contains(int layer, int expert) => Experts.TryGetValue(layer, out int[]? ids) && ids.Contains(expert);

    /// <summary>The experts among these that <paramref name="holds"/> says are here (one rank's share); layers left without any are dropped.</summary>
    public ExpertConfig HeldBy(Func<int, bool> holds) =>
        new(new SortedDictionary<int, int[]>(Experts.Select(kv => (kv.Key, Ids: kv.Value.Where(holds).ToArray()))
            .Where(l => l.Ids.Length > 0).ToDictionary(l => l.Key, l => l.Ids)));

    /// <summary>
    /// Per layer, experts by descending score (ties: lower id first) until their cumulative score reaches
    /// <paramref name="topP"/>; at least one per layer. Ids are listed ascending.
    /// </summary>
    public static ExpertConfig Select(ExpertScores scores, EsftScoreFunction function, double topP)
    {
        if (!(topP is > 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(topP), topP, $"top_p must be in (0, 1], got {topP}");
        var chosen = new SortedDictionary<int, int[]>();
        foreach (int layer in scores.Layers.Keys.Order())
        {
            double[] s = scores.Of(layer, function);
            var kept = new List<int>();
            double cumulative = 0;
            foreach (int expert in Enumerable.Range(0, s.Length).OrderByDescending(e => s[e]).ThenBy(e => e))
            {
                kept.Add(expert);
                cumulative += s[expert];
                if (cumulative >= topP - Tolerance) break;
            }
            kept.Sort();
            chosen[layer] = [.. kept];
        }
        return new ExpertConfig(chosen);
    }

    public void Save(string path)
    {
        var experts = new JsonObject();
        foreach ((int layer, int[] ids) in Experts.OrderBy(kv => kv.Key))
            experts[layer.ToString(CultureInfo.InvariantCulture)] = new JsonArray(ids.Select(i => (JsonNode)i).ToArray());
        var json = new JsonObject { ["experts"] = experts, ["shared_experts"] = false, ["non_expert_modules"] = false };
        AtomicFile.Write(path, s => s.Write(System.Text.Encoding.UTF8.GetBytes(json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n")));
    }
}
