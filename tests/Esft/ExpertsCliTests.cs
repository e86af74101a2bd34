using System.Text.Json.Nodes;
using Tune.Cli;

namespace Tune.Tests.Esft;

/// <summary>`tune experts score` and `tune experts select` through the real entry point.</summary>
[Collection("torch")]
public sealed class ExpertsCliTests
{
    private static async Task<(int Exit, string Out, string Err)> Tune(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = await Program.Run(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task ScoreThenSelectWritesScoresHeatMapAndExpertConfig()
    {
        string dir = EsftFixtures.NewDirectory("cli");
        Directory.CreateDirectory(dir);
        string recipe = Path.Combine(dir, "task.yaml"), scores = Path.Combine(dir, "scores.json"),
            png = Path.Combine(dir, "heat.png"), cfg = Path.Combine(dir, "expert_cfg.json");
        File.WriteAllText(recipe, EsftFixtures.DataSection());

        var (exit, output, error) = await Tune("experts", "score", "--model", EsftFixtures.Model, "--data", recipe, "--out", scores,
            "--max-rows", "2", "--png", png, "--device", "cpu", "--dtype", "f32");
        Assert.True(exit == 0, error);
        Assert.Contains("scored 2 layers × 8 experts", output);
        Assert.Contains("2/2 rows", error);
        Assert.Equal(2, JsonNode.Parse(File.ReadAllText(scores))!["rows"]!.GetValue<long>());
        Assert.Equal(0x89, File.ReadAllBytes(png)[0]);

        (exit, output, error) = await Tune("experts", "select", "--scores", scores, "--top-p", "0.5", "--score", "gate", "--out", cfg);
        Assert.True(exit == 0, error);
        JsonObject json = JsonNode.Parse(File.ReadAllText(cfg))!.AsObject();
        Assert.Equal(["1", "2"], json["experts"]!.AsObject().Select(kv => kv.Key));
        Assert.All(json["experts"]!.AsObject(), kv => Assert.InRange(kv.Value!.AsArray().Count, 1, 8));

        (exit, _, error) = await Tune("experts", "select", "--scores", scores, "--top-p", "1.5", "--out", cfg);
        Assert.Equal(2, exit);
        Assert.Contains("--top-p", error);
    }

    [Fact]
    public async Task ScoreReadsABareDataFileAsItsKind()
    {
        string dir = EsftFixtures.NewDirectory("cli-file");
        Directory.CreateDirectory(dir);
        string data = Path.Combine(dir, "task.jsonl"), scores = Path.Combine(dir, "scores.json");
        File.WriteAllText(data, """{"prompt": "def add(a, b):", "completion": " return a + b"}""" + "\n" +
                                """{"prompt": "def mul(a, b):", "completion": " return a * b"}""" + "\n");
        var (exit, output, error) = await Tune("experts", "score", "--model", EsftFixtures.Model, "--data", data,
            "--kind", "prompt_completion", "--out", scores, "--device", "cpu", "--dtype", "f32");
        Assert.True(exit == 0, error);
        Assert.Contains("scored 2 layers × 8 experts", output);
        JsonNode json = JsonNode.Parse(File.ReadAllText(scores))!;
        Assert.True(json["tokens"]!.GetValue<long>() > 0);

        (exit, _, error) = await Tune("experts", "score", "--model", EsftFixtures.Model, "--data", data, "--kind", "chat", "--out", scores);
        Assert.NotEqual(0, exit);
        Assert.Contains("chat", error);
    }
}
