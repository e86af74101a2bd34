using System.Text.Json.Nodes;
using TorchSharp;
using Tune.Formats;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>
/// Writes a randomly initialised DeepSeek-V2 checkpoint in the exact Hugging Face layout: config.json, safetensors
/// (sharded with an index when asked), tokenizer.json, tokenizer_config.json and generation_config.json. Weights are
/// normal(0, initializer_range) and norms one, as HF's _init_weights does. Tensors are drawn one at a time from a
/// seeded generator, so the same seed gives the same bytes and memory stays at one tensor.
/// </summary>
public static class RandomCheckpoint
{
    public static IReadOnlyList<string> Write(DeepSeekV2Config config, string directory, DType dtype, long seed,
        string tokenizerDirectory, int shards, Action<int, int>? progress = null)
    {
        if (shards < 1) throw new ArgumentOutOfRangeException(nameof(shards), "--shards must be at least 1");
        if (dtype is not (DType.F32 or DType.F16 or DType.BF16))
            throw new ArgumentException($"--dtype: checkpoints hold f32, f16 or bf16 weights, not {dtype}");
        foreach (string file in new[] { "tokenizer.json", "tokenizer_config.json" })
            if (!File.Exists(Path.Combine(tokenizerDirectory, file)))
                throw new FileNotFoundException($"--tokenizer {tokenizerDirectory}: {file} is missing", Path.Combine(tokenizerDirectory, file));
        Directory.CreateDirectory(directory);

        config = config with { TorchDtype = dtype switch { DType.F32 => "float32", DType.F16 => "float16", _ => "bfloat16" } };
        ScalarType scalar = dtype switch { DType.F32 => ScalarType.Float32, DType.F16 => ScalarType.Float16, _ => ScalarType.BFloat16 };
        IReadOnlyList<TensorSpec> specs = CheckpointLayout.Tensors(config);
        var generator = new Generator(unchecked((ulong)seed));
        int done = 0;
        var sources = specs.Select(spec => new TensorSource(spec.Name, dtype, spec.Shape, bytes =>
        {
            using var scope = NewDisposeScope();
            Tensor values = spec.Init == TensorInit.Ones
                ? ones(spec.Shape, scalar)
                : (randn(spec.Shape, ScalarType.Float32, generator: generator) * config.InitializerRange).to(scalar);
            values.bytes.CopyTo(bytes);
            progress?.Invoke(++done, specs.Count);
        })).ToList();
        IReadOnlyList<string> written = SafetensorsWriter.WriteSharded(directory, sources, shards,
            new Dictionary<string, string> { ["format"] = "pt" });

        AtomicFile.Write(Path.Combine(directory, "config.json"), s => WriteText(s, config.ToJson()));
        var generation = new JsonObject
        {
            ["_from_model_config"] = true,
            ["bos_token_id"] = config.BosTokenId,
            ["eos_token_id"] = config.EosTokenId,
        };
        AtomicFile.Write(Path.Combine(directory, "generation_config.json"), s => WriteText(s, generation.ToJsonString()));
        foreach (string file in new[] { "tokenizer.json", "tokenizer_config.json" })
        {
            string source = Path.Combine(tokenizerDirectory, file);
            AtomicFile.Write(Path.Combine(directory, file), s => { using FileStream input = File.OpenRead(source); input.CopyTo(s); });
        }
        return written;
    }

    private static void WriteText(Stream stream, string text)
    {
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(text + "\n");
        stream.Write(bytes);
    }
}
