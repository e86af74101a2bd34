using System.Collections.Concurrent;
using Tune.Convert;
using Tune.Formats;
using Tune.Model;

namespace Tune.Tests.Convert;

/// <summary>
/// Small DeepSeek-V2 configs for conversion tests. llama.cpp takes n_vocab from the tokenizer and wants the embedding
/// to cover it, so the vocabulary is the real 102400 over a tiny hidden size. The weights are wide
/// (initializer_range 0.4) so next-token distributions are peaked, not near-uniform, and a wrong weight shows in |Δp|.
/// Checkpoints and GGUF files live under one directory per test process, deleted when the process exits.
/// </summary>
public static class ConvertModels
{
    private static readonly ConcurrentDictionary<(DeepSeekV2Config, DType), Lazy<string>> Written = new();
    private const string RootPrefix = "tune-convert-tests-";

    private static readonly Lazy<string> LazyRoot = new(() =>
    {
        // The test host is often killed rather than exited, so runs that ended also get cleaned up by the next one.
        foreach (string stale in Directory.GetDirectories(Path.GetTempPath(), RootPrefix + "*"))
            if (int.TryParse(Path.GetFileName(stale)[RootPrefix.Length..], out int pid) && !IsRunning(pid))
                DeleteQuietly(stale);
        string root = Path.Combine(Path.GetTempPath(), RootPrefix + Environment.ProcessId);
        Directory.CreateDirectory(root);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => DeleteQuietly(root);
        return root;
    });

    public static DeepSeekV2Config Base { get; } = new()
    {
        VocabSize = 102400,
        HiddenSize = 64,
        IntermediateSize = 160,
        MoeIntermediateSize = 32,
        NumHiddenLayers = 3,
        NumAttentionHeads = 4,
        NumKeyValueHeads = 4,
        NSharedExperts = 2,
        NRoutedExperts = 8,
        NumExpertsPerTok = 3,
        TopkMethod = "greedy",
        NGroup = 1,
        TopkGroup = 1,
        FirstKDenseReplace = 1,
        QLoraRank = null,
        KvLoraRank = 32,
        QkNopeHeadDim = 16,
        QkRopeHeadDim = 8,
        VHeadDim = 16,
        RopeScaling = new RopeScaling("yarn", 40, 4096, 32, 1, 0.707, 0.707),
        MaxPositionEmbeddings = 163840,
        BosTokenId = 100000,
        EosTokenId = 100001,
        InitializerRange = 0.4,
    };

    /// <summary>Query compression (q_a/q_b), normalised top-k weights with a scaling factor the HF model ignores.</summary>
    public static DeepSeekV2Config QLora { get; } = Base with { QLoraRank = 24, NormTopkProb = true, RoutedScalingFactor = 2.5 };

    /// <summary>DeepSeek-V2 236B-style routing: 4 groups of 2 experts, the best 2 groups kept.</summary>
    public static DeepSeekV2Config GroupLimited { get; } = Base with { TopkMethod = "group_limited_greedy", NGroup = 4, TopkGroup = 2 };

    /// <summary>No rope scaling, and 27 layers: llama.cpp's "Lite" rule, under which q_lora_rank is omitted as the converter does.</summary>
    public static DeepSeekV2Config NoYarn27 { get; } = Base with { RopeScaling = null, MaxPositionEmbeddings = 4096, NumHiddenLayers = 27 };

    /// <summary>What llama.cpp's runtime cannot express directly: no shared expert, tied embeddings, mscale ≠ mscale_all_dim.</summary>
    public static DeepSeekV2Config Quirks { get; } = Base with
    {
        NSharedExperts = 0,
        TieWordEmbeddings = true,
        RopeScaling = new RopeScaling("yarn", 40, 4096, 32, 1, 1.0, 0.707),
    };

    public static string Root => LazyRoot.Value;

    /// <summary>A random checkpoint of <paramref name="config"/> (seed 7), written once per test run.</summary>
    public static string Checkpoint(DeepSeekV2Config config, DType dtype = DType.F32) =>
        Written.GetOrAdd((config, dtype), key => new Lazy<string>(() =>
        {
            string dir = Path.Combine(Root, $"checkpoint-{Guid.NewGuid():N}");
            RandomCheckpoint.Write(key.Item1, dir, key.Item2, seed: 7, RepoPaths.Tokenizers, shards: 1);
            return dir;
        })).Value;

    public static void DeleteQuietly(string directory)
    {
        try { Directory.Delete(directory, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>A fresh directory for one test's output.</summary>
    public static string NewDirectory(string purpose) => Directory.CreateDirectory(Path.Combine(Root, $"{purpose}-{Guid.NewGuid():N}")).FullName;

    /// <summary>Converts (the library entry point `tune convert` calls) and returns the GGUF path.</summary>
    public static string Convert(string checkpoint, string fileName, GgmlType? type = null, KvLayout layout = KvLayout.Split)
    {
        string path = Path.Combine(Root, fileName);
        using var conversion = HfToGgufConversion.Prepare(new ConvertOptions(checkpoint, path) { Type = type, Layout = layout });
        conversion.Write();
        return path;
    }
}
