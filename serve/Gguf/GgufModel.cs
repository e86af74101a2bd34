using Tune.Formats;
using Tune.Model;
using Tune.Model.Tokenization;

namespace Tune.Serve.Gguf;

/// <summary>
/// A deepseek2 GGUF file loaded into the one <see cref="DeepSeekV2ForCausalLM"/> graph, with the tokenizer the file
/// carries. Quantised weights (q8_0, q4_0, q5_0, q5_1, q4_K, q5_K, q6_K) stay memory-mapped in their block format and
/// are multiplied on the CPU with <paramref name="threads"/> threads; f32/f16/bf16 tensors become (or alias) torch
/// tensors. Disposing closes the model and then the mapping its weights point into.
/// </summary>
public sealed class GgufModel : IDisposable
{
    private readonly GgufFile _file;

    private GgufModel(GgufFile file, DeepSeekV2ForCausalLM model, DeepSeekTokenizer tokenizer)
    {
        _file = file;
        Model = model;
        Tokenizer = tokenizer;
    }

    public DeepSeekV2ForCausalLM Model { get; }
    public DeepSeekTokenizer Tokenizer { get; }
    public string Path => _file.Path;

    /// <summary>Opens <paramref name="path"/> for inference on <paramref name="runtime"/> (CPU; f32 or bf16 activations).</summary>
    public static GgufModel Load(string path, TorchRuntime runtime, int threads)
    {
        if (runtime.Device.type != TorchSharp.DeviceType.CPU)
            throw new ArgumentException($"--device {runtime.Device}: GGUF models run on the CPU (the quantised kernels are CPU SIMD)");
        GgufFile file = GgufFile.Open(path);
        try
        {
            DeepSeekTokenizer tokenizer = GgufTokenizer.Load(file);
            var model = new DeepSeekV2ForCausalLM(new GgufWeights(file, runtime, threads));
            model.eval();
            return new GgufModel(file, model, tokenizer);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Model.Dispose();
        _file.Dispose();
    }
}
