using Tune.Formats;
using Tune.Tests.Model;
using Tune.Trainer.Esft;

namespace Tune.Tests.Esft;

/// <summary>The tiny model, a small code dataset and recipe text shared by the ESFT tests.</summary>
internal static class EsftFixtures
{
    public static DeepSeekV2Config Config { get; } = TestModels.Tiny with { VocabSize = 102400, InitializerRange = 0.5 };

    public static string Model => TestModels.Checkpoint(Config);

    public static string Data
    {
        get
        {
            string path = Path.Combine(TestModels.Root, "esft.jsonl");
            if (!File.Exists(path))
                File.WriteAllLines(path,
                [
                    """{"text": "def add(a, b):\n    return a + b\n"}""",
                    """{"text": "def mul(a, b):\n    return a * b\n"}""",
                    """{"text": "class Stack:\n    def __init__(self):\n        self.items = []\n"}""",
                ]);
            return path;
        }
    }

    public static string DataSection(int seqLen = 32) => $$"""
        data:
          train: [{path: {{Data}}, kind: text}]
          eval_fraction: 0
          seq_len: {{seqLen}}
          fim: {rate: 0}
        """;

    /// <summary>A fresh path under the tests' root (which is made here: tests without a model may run first).</summary>
    public static string NewDirectory(string kind) =>
        Path.Combine(Directory.CreateDirectory(TestModels.Root).FullName, $"esft-{kind}-{Guid.NewGuid():N}");

    /// <summary>Hand-made scores: one list per MoE layer, used as both the gate and the token score unless <paramref name="gate"/> is given.</summary>
    public static ExpertScores Scores(Dictionary<int, double[]> token, Dictionary<int, double[]>? gate = null) =>
        new("hand", 100, 1, 2, token.First().Value.Length,
            token.ToDictionary(kv => kv.Key, kv => new LayerExpertScores(gate?[kv.Key] ?? kv.Value, kv.Value)));
}
