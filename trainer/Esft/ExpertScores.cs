using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tune.Formats;
using Tune.Trainer.Recipes;

namespace Tune.Trainer.Esft;

/// <summary>
/// How much a task's data uses each routed expert (ESFT's two scores), per MoE layer, normalised within the layer:
/// gate = the expert's share of the gate weight routed in that layer; token = its share of the layer's (token, choice)
/// pairs, i.e. tokens routed to it / top_k / tokens. Saved as JSON:
/// <c>{"format": "tune-expert-scores", "version": 1, "model": DIR, "tokens": N, "rows": R, "top_k": k,
/// "n_routed_experts": E, "layers": {"1": {"gate": [E numbers], "token": [E numbers]}, ...}}</c>.
/// </summary>
public sealed record ExpertScores(string Model, long Tokens, long Rows, int TopK, int ExpertCount, IReadOnlyDictionary<int, LayerExpertScores> Layers)
{
    private const string Format = "tune-expert-scores";

    public double[] Of(int layer, EsftScoreFunction function) =>
        function == EsftScoreFunction.Gate ? Layers[layer].Gate : Layers[layer].Token;

    public void Save(string path)
    {
        var layers = new JsonObject();
        foreach ((int layer, LayerExpertScores s) in Layers.OrderBy(kv => kv.Key))
            layers[layer.ToString(CultureInfo.InvariantCulture)] = new JsonObject
            {
                ["gate"] = new JsonArray(s.Gate.Select(v => (JsonNode)v).ToArray()),
                ["token"] = new JsonArray(s.Token.Select(v => (JsonNode)v).ToArray()),
            };
        var json = new JsonObject
        {
            ["format"] = Format,
            ["version"] = 1,
            ["model"] = Model,
            ["tokens"] = Tokens,
            ["rows"] = Rows,
            ["top_k"] = TopK,
            ["n_routed_experts"] = ExpertCount,
            ["layers"] = layers,
        };
        AtomicFile.Write(path, s => s.Write(System.Text.Encoding.UTF8.GetBytes(json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n")));
    }

    /// <summary>Reads a scores file; every problem names the file and the field.</summary>
    public static ExpertScores Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such scores file (write it with `tune experts score`)", path);
        JsonObject o;
        try
        {
            o = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new FormatException($"{path}: not a JSON object");
        }
        catch (JsonException e)
        {
            throw new FormatException($"{path}: not valid JSON: {e.Message}", e);
        }
        if (o["format"]?.GetValueKind() != JsonValueKind.String || o["format"]!.GetValue<string>() != Format)
            throw new FormatException($"{path}: format: expected \"{Format}\" (a file `tune experts score` writes)");
        long Integer(string key, long min)
        {
            if (o[key] is JsonValue v && v.TryGetValue(out long n) && n >= min) return n;
            throw new FormatException($"{path}: {key}: expected an integer of at least {min}");
        }
        long tokens = Integer("tokens", 1), rows = Integer("rows", 1);
        int topK = (int)Integer("top_k", 1), experts = (int)Integer("n_routed_experts", 1);
        string model = o["model"] is JsonValue m && m.TryGetValue(out string? s) ? s : "";
        if (o["layers"] is not JsonObject layers || layers.Count == 0)
            throw new FormatException($"{path}: layers: expected an object of layer index to scores");
        var read = new SortedDictionary<int, LayerExpertScores>();
        foreach ((string key, JsonNode? node) in layers)
        {
            if (!int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out int layer))
                throw new FormatException($"{path}: layers.{key}: expected a layer index");
            read[layer] = new LayerExpertScores(Scores(path, $"layers.{key}.gate", node?["gate"], experts),
                Scores(path, $"layers.{key}.token", node?["token"], experts));
        }
        return new ExpertScores(model, tokens, rows, topK, experts, read);
    }

    /// <summary>Checks that the scores describe the MoE layers and experts of <paramref name="config"/>.</summary>
    public void CheckFits(DeepSeekV2Config config, string path)
    {
        if (ExpertCount != config.NRoutedExperts)
            throw new InvalidDataException($"{path}: n_routed_experts: {ExpertCount}, but the model has {config.NRoutedExperts?.ToString(CultureInfo.InvariantCulture) ?? "no"} routed experts");
        int[] moe = Enumerable.Range(0, config.NumHiddenLayers).Where(config.IsMoeLayer).ToArray();
        if (!moe.SequenceEqual(Layers.Keys.Order()))
            throw new InvalidDataException($"{path}: layers: scores layers {string.Join(", ", Layers.Keys.Order())}, " +
                                           $"but the model's MoE layers are {string.Join(", ", moe)}");
    }

    private static double[] Scores(string path, string field, JsonNode? node, int experts)
    {
        if (node is not JsonArray list || list.Count != experts)
            throw new FormatException($"{path}: {field}: expected a list of {experts} scores (n_routed_experts)");
        var values = new double[experts];
        for (int e = 0; e < experts; e++)
        {
            if (list[e] is not JsonValue v || !v.TryGetValue(out double x) || !double.IsFinite(x) || x < 0)
                throw new FormatException($"{path}: {field}.{e}: expected a score of 0 or more");
            values[e] = x;
        }
        return values;
    }
}
