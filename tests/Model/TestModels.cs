using System.Collections.Concurrent;
using Tune.Formats;
using Tune.Model;

namespace Tune.Tests.Model;

/// <summary>
/// Small random DeepSeek-V2 checkpoints written by `tune new`'s library entry point into a temp directory, one per
/// distinct config, shared by the tests of a run.
/// </summary>
public static class TestModels
{
    private static readonly ConcurrentDictionary<string, Lazy<string>> Written = new();

    public static string Root { get; } = Path.Combine(Path.GetTempPath(), $"tune-tests-{Environment.ProcessId}");


    /// <summary>A tiny MoE config with every feature on: dense layer 0, shared experts, YaRN, several experts per token.</summary>
    public static DeepSeekV2Config Tiny { get; } = new()
    {
        VocabSize = 512,
        HiddenSize = 32,
        IntermediateSize = 48,
        MoeIntermediateSize = 16,
        NumHiddenLayers = 3,
        NumAttentionHeads = 4,
        NumKeyValueHeads = 4,
        NSharedExperts = 2,
        NRoutedExperts = 8,
        NumExpertsPerTok = 3,
        TopkMethod = "greedy",
        FirstKDenseReplace = 1,
        QLoraRank = null,
        KvLoraRank = 16,
        QkNopeHeadDim = 8,
        QkRopeHeadDim = 4,
        VHeadDim = 8,
        RopeScaling = new RopeScaling("yarn", 40, 4096, 32, 1, 0.707, 0.707),
        MaxPositionEmbeddings = 163840,
        BosTokenId = 0,
        EosTokenId = 1,
        InitializerRange = 0.2,
    };

    /// <summary>Writes (once per run) a random f32 checkpoint of <paramref name="config"/> and returns its directory.</summary>
    public static string Checkpoint(DeepSeekV2Config config, long seed = 7, DType dtype = DType.F32, int shards = 1)
    {
        string hash = System.Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(
            System.Text.Encoding.UTF8.GetBytes(config.ToJson())))[..12];
        string key = $"{hash}-{seed}-{dtype}-{shards}";
        return Written.GetOrAdd(key, k => new Lazy<string>(() =>
        {
            string dir = Path.Combine(Root, k);
            RandomCheckpoint.Write(config, dir, dtype, seed, RepoPaths.Tokenizers, shards);
            return dir;
        })).Value;
    }
}
