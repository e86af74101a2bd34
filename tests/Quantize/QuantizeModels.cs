using System.Collections.Concurrent;
using Tune.Formats;
using Tune.Tests.Convert;

namespace Tune.Tests.Quantize;

/// <summary>
/// A DeepSeek-V2 model with Coder-V2-Lite's row lengths where the type rules care: attn_k_b rows of 128
/// (qk_nope_head_dim), expert ffn_down rows of 1408, the dense ffn_down's of 10944 (none whole 256-blocks), shared
/// expert rows of 2816 and hidden 256 (whole blocks), kv_lora_rank 512. Nine layers, so every branch of the
/// layer rules is taken (Q4_K_S's first eighth needs n/8 ≥ 1). Two routed experts keep it small (and away from
/// llama.cpp's 8-expert special case). The vocabulary is the real 102400 (llama.cpp takes n_vocab from the tokenizer).
/// Random weights, seed 7, written as f32 and converted by `tune convert`.
/// </summary>
public static class QuantizeModels
{
    private static readonly ConcurrentDictionary<GgmlType, Lazy<string>> Converted = new();

    public static DeepSeekV2Config Shaped { get; } = ConvertModels.Base with
    {
        HiddenSize = 256,
        IntermediateSize = 10944,
        MoeIntermediateSize = 1408,
        NumHiddenLayers = 9,
        NumAttentionHeads = 2,
        NumKeyValueHeads = 2,
        NSharedExperts = 2,
        NRoutedExperts = 2,
        NumExpertsPerTok = 1,
        KvLoraRank = 512,
        QkNopeHeadDim = 128,
        QkRopeHeadDim = 64,
        VHeadDim = 128,
        InitializerRange = 0.1,
    };

    /// <summary>`tune convert --type <paramref name="type"/>` of the random checkpoint, once per test run.</summary>
    public static string Gguf(GgmlType type) =>
        Converted.GetOrAdd(type, t => new Lazy<string>(() =>
            ConvertModels.Convert(ConvertModels.Checkpoint(Shaped), $"quantize-shaped-{t.Name()}.gguf", t))).Value;
}
