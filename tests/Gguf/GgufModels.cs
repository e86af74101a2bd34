using System.Collections.Concurrent;
using Tune.Formats;
using Tune.Quantize;
using Tune.Tests.Convert;
using Tune.Tests.Quantize;

namespace Tune.Tests.Gguf;

/// <summary>
/// Quantised GGUF files for the loader tests: <see cref="QuantizeModels.Shaped"/> (Coder-V2-Lite's row lengths, so
/// q4_k_m takes its q5_0/q5_1/q6_K/q8_0 fallbacks) with initializer_range 0.2 instead of 0.1, so next-token
/// distributions are more peaked (at 0.4 the nine random layers turn rounding-level differences into whole-logit ones); converted to f32 and quantised with
/// `tune quantize`'s entry point, once per test run.
/// </summary>
public static class GgufModels
{
    private static readonly ConcurrentDictionary<DeepSeekV2Config, Lazy<string>> Converted = new();
    private static readonly ConcurrentDictionary<(string F32, string Mix), Lazy<string>> Quantised = new();

    /// <summary>Peaked distributions, for greedy continuations.</summary>
    public static DeepSeekV2Config Peaked { get; } = QuantizeModels.Shaped with { InitializerRange = 0.2 };

    /// <summary>
    /// <see cref="QuantizeModels.Shaped"/> itself (initializer_range 0.1): calm enough that float-order differences do
    /// not flip an activation's rounding level, so single products can be compared with llama.cpp's closely.
    /// </summary>
    public static DeepSeekV2Config Calm => QuantizeModels.Shaped;

    public static string F32(DeepSeekV2Config config) => Converted.GetOrAdd(config, c => new Lazy<string>(() =>
        ConvertModels.Convert(ConvertModels.Checkpoint(c), $"gguf-{Guid.NewGuid():N}-f32.gguf", GgmlType.F32))).Value;

    public static string Quantise(DeepSeekV2Config config, QuantizationMix mix) => Quantise(F32(config), mix);

    /// <summary>`tune quantize` of an f32 file, once per file and mix.</summary>
    public static string Quantise(string f32, QuantizationMix mix) => Quantised.GetOrAdd((f32, mix.Name), _ => new Lazy<string>(() =>
    {
        string path = Path.Combine(ConvertModels.Root, $"gguf-{Guid.NewGuid():N}-{mix.Name}.gguf");
        using var q = GgufQuantization.Prepare(new QuantizeOptions(f32, path, mix) { Threads = 2 });
        q.Write();
        return path;
    })).Value;
}
