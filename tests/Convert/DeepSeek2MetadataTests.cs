using Tune.Convert;
using Tune.Formats;
using Tune.Tests.Formats;

namespace Tune.Tests.Convert;

/// <summary>The deepseek2 keys for DeepSeek-Coder-V2-Lite: every key, type, value and the order of gguf.md §2.2.</summary>
public sealed class DeepSeek2MetadataTests
{
    private static readonly DeepSeekV2Config Lite = DeepSeekV2Config.Parse(CoderV2LiteConfig.Json, "lite config.json");

    private static List<KeyValuePair<string, GgufValue>> Keys(DeepSeekV2Config c, KvLayout layout = KvLayout.Split, GgmlType type = GgmlType.BF16) =>
        DeepSeek2Metadata.Model(c, layout, type, "DeepSeek-Coder-V2-Lite-Base", "64x1.5B", LlamaCppCompatibility.For(c));

    private static object Value(List<KeyValuePair<string, GgufValue>> keys, string key) => Assert.Single(keys, kv => kv.Key == key).Value.Value;

    [Fact]
    public void LiteKeysAreTheConvertersInItsOrderWithItsTypes()
    {
        (string Key, GgufValueType Type, object Value)[] expected =
        [
            ("general.architecture", GgufValueType.String, "deepseek2"),
            ("general.type", GgufValueType.String, "model"),
            ("general.name", GgufValueType.String, "DeepSeek-Coder-V2-Lite-Base"),
            ("general.size_label", GgufValueType.String, "64x1.5B"),
            ("deepseek2.block_count", GgufValueType.UInt32, 27u),
            ("deepseek2.context_length", GgufValueType.UInt32, 163840u),
            ("deepseek2.embedding_length", GgufValueType.UInt32, 2048u),
            ("deepseek2.feed_forward_length", GgufValueType.UInt32, 10944u),
            ("deepseek2.attention.head_count", GgufValueType.UInt32, 16u),
            ("deepseek2.attention.head_count_kv", GgufValueType.UInt32, 1u),
            ("deepseek2.rope.scaling.type", GgufValueType.String, "yarn"),
            ("deepseek2.rope.scaling.factor", GgufValueType.Float32, 40f),
            ("deepseek2.rope.scaling.original_context_length", GgufValueType.UInt32, 4096u),
            ("deepseek2.rope.scaling.yarn_beta_fast", GgufValueType.Float32, 32f),
            ("deepseek2.rope.scaling.yarn_beta_slow", GgufValueType.Float32, 1f),
            ("deepseek2.rope.freq_base", GgufValueType.Float32, 10000f),
            ("deepseek2.attention.layer_norm_rms_epsilon", GgufValueType.Float32, 1e-6f),
            ("deepseek2.expert_count", GgufValueType.UInt32, 64u),
            ("deepseek2.expert_used_count", GgufValueType.UInt32, 6u),
            ("deepseek2.expert_group_count", GgufValueType.UInt32, 1u),
            ("deepseek2.expert_group_used_count", GgufValueType.UInt32, 1u),
            ("deepseek2.expert_gating_func", GgufValueType.UInt32, 1u),
            ("general.file_type", GgufValueType.UInt32, 32u),
            ("deepseek2.leading_dense_block_count", GgufValueType.UInt32, 1u),
            ("deepseek2.vocab_size", GgufValueType.UInt32, 102400u),
            ("deepseek2.attention.kv_lora_rank", GgufValueType.UInt32, 512u),
            ("deepseek2.attention.key_length", GgufValueType.UInt32, 576u),
            ("deepseek2.attention.value_length", GgufValueType.UInt32, 512u),
            ("deepseek2.attention.key_length_mla", GgufValueType.UInt32, 192u),
            ("deepseek2.attention.value_length_mla", GgufValueType.UInt32, 128u),
            ("deepseek2.expert_feed_forward_length", GgufValueType.UInt32, 1408u),
            ("deepseek2.expert_shared_count", GgufValueType.UInt32, 2u),
            ("deepseek2.expert_weights_scale", GgufValueType.Float32, 1f),
            ("deepseek2.rope.dimension_count", GgufValueType.UInt32, 64u),
            ("deepseek2.rope.scaling.yarn_log_multiplier", GgufValueType.Float32, 0.0707f),
            ("general.quantization_version", GgufValueType.UInt32, 2u),
        ];
        var keys = Keys(Lite);
        Assert.Equal(expected.Select(e => e.Key), keys.Select(k => k.Key));
        foreach (var ((key, type, value), actual) in expected.Zip(keys))
        {
            Assert.True(type == actual.Value.Type, $"{key}: {actual.Value.Type}, expected {type}");
            Assert.Equal(value, actual.Value.Value);
        }
    }

    [Fact]
    public void TheLegacyLayoutWritesRealHeadSizesAndNoMlaKeys()
    {
        var keys = Keys(Lite, KvLayout.Legacy);
        Assert.Equal(16u, Value(keys, "deepseek2.attention.head_count_kv"));
        Assert.Equal(192u, Value(keys, "deepseek2.attention.key_length"));
        Assert.Equal(128u, Value(keys, "deepseek2.attention.value_length"));
        Assert.DoesNotContain(keys, kv => kv.Key.EndsWith("_mla"));
    }

    [Theory]
    [InlineData(GgmlType.F32, 0u)]
    [InlineData(GgmlType.F16, 1u)]
    [InlineData(GgmlType.BF16, 32u)]
    [InlineData(GgmlType.Q8_0, 7u)]
    public void FileTypeFollowsTheOutputType(GgmlType type, uint fileType) =>
        Assert.Equal(fileType, Value(Keys(Lite, type: type), "general.file_type"));

    [Fact]
    public void QLoraRankIsWrittenWhenSetAndZeroForNonLiteLayerCounts()
    {
        Assert.Equal(1536u, Value(Keys(Lite with { QLoraRank = 1536 }), "deepseek2.attention.q_lora_rank"));
        Assert.Equal(0u, Value(Keys(Lite with { NumHiddenLayers = 3 }), "deepseek2.attention.q_lora_rank"));
        Assert.DoesNotContain(Keys(Lite with { NumHiddenLayers = 26 }), kv => kv.Key == "deepseek2.attention.q_lora_rank");
    }

    [Fact]
    public void NoRopeScalingWritesNoYarnKeys()
    {
        var keys = Keys(Lite with { RopeScaling = null });
        Assert.DoesNotContain(keys, kv => kv.Key.Contains("rope.scaling"));
        Assert.Equal(64u, Value(keys, "deepseek2.rope.dimension_count"));
    }

    [Fact]
    public void TheSizeLabelIsGgufPysExpertsTimesActiveShape()
    {
        var order = CheckpointLayout.Tensors(Lite).Select((t, i) => (t.Name, i)).ToDictionary(p => p.Name, p => p.i);
        var plan = DeepSeek2TensorMap.Plan(Lite, KvLayout.Split, GgmlType.BF16, LlamaCppCompatibility.For(Lite), n => order[n], []);
        Assert.Equal("64x1.5B", DeepSeek2Metadata.SizeLabel(plan));
    }
}
