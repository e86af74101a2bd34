using System.Runtime.InteropServices;
using TorchSharp;
using Tune.Formats;
using Tune.Model;
using static TorchSharp.torch;

namespace Tune.Trainer.Esft;

/// <summary>
/// ESFT's full-weight "adapter": the trained experts' gate/up/down_proj weights under their Hugging Face names in
/// esft_experts.safetensors (float32, as trained), with expert_cfg.json beside them, as esft.py's add_adapter loads
/// them over the base. Written to the output directory and to every checkpoint; `tune merge` puts them in the base.
/// </summary>
public static class EsftExpertWeights
{
    public const string FileName = "esft_experts.safetensors";

    private static readonly string[] Projections = ["gate_proj", "up_proj", "down_proj"];

    /// <summary>The routed expert a name of <see cref="TensorNames"/> belongs to.</summary>
    public static int ExpertOf(string tensorName) => int.Parse(tensorName.Split('.')[5], System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Checkpoint names of the weights ESFT trains for <paramref name="config"/>.</summary>
    public static IEnumerable<string> TensorNames(ExpertConfig config) =>
        from kv in config.Experts.OrderBy(kv => kv.Key)
        from expert in kv.Value
        from projection in Projections
        select $"model.layers.{kv.Key}.mlp.experts.{expert}.{projection}.weight";

    public static void Save(DeepSeekV2ForCausalLM model, ExpertConfig config, string directory) =>
        Write(Parameters(model, config, directory), config, directory);

    /// <summary>Writes <paramref name="weights"/>, which holds a tensor for each of <see cref="TensorNames"/>, in that order.</summary>
    public static void Write(IReadOnlyDictionary<string, Tensor> weights, ExpertConfig config, string directory)
    {
        var sources = TensorNames(config).Select(name => new TensorSource(name, DType.F32, weights[name].shape, bytes =>
        {
            using var scope = NewDisposeScope();
            float[] data = weights[name].detach().cpu().to(ScalarType.Float32).data<float>().ToArray();
            MemoryMarshal.AsBytes(data.AsSpan()).CopyTo(bytes);
        })).ToList();
        Directory.CreateDirectory(directory);
        SafetensorsWriter.Write(Path.Combine(directory, FileName), sources, new Dictionary<string, string> { ["format"] = "pt" });
        config.Save(Path.Combine(directory, ExpertConfig.FileName));
    }

    /// <summary>Copies the saved expert weights into the model's trainable copies (resume keeps the optimiser's parameters).</summary>
    public static void Restore(DeepSeekV2ForCausalLM model, ExpertConfig config, string directory)
    {
        string path = Path.Combine(directory, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"{directory}: {FileName} is missing; this checkpoint is not of an ESFT full run", path);
        using SafetensorsFile file = SafetensorsFile.Open(path);
        string[] expected = [.. TensorNames(config).Order(StringComparer.Ordinal)];
        if (!file.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal).SequenceEqual(expected))
            throw new InvalidDataException($"{path}: holds other experts than this run trains (esft.scores, score_function or top_p changed?)");
        Dictionary<string, Tensor> parameters = Parameters(model, config, directory);
        using var noGrad = no_grad();
        foreach (TensorInfo info in file.Tensors)
        {
            Tensor p = parameters[info.Name];
            if (!info.Shape.SequenceEqual(p.shape))
                throw new InvalidDataException($"{path}: {info.Name} has shape [{string.Join(", ", info.Shape)}], the model's is [{string.Join(", ", p.shape)}]");
            var values = new float[info.ElementCount];
            file.ReadFloat32(info, values);
            using var scope = NewDisposeScope();
            p.copy_(tensor(values, info.Shape));
        }
    }

    private static Dictionary<string, Tensor> Parameters(DeepSeekV2ForCausalLM model, ExpertConfig config, string directory)
    {
        var wanted = TensorNames(config).ToHashSet(StringComparer.Ordinal);
        var found = model.named_parameters().Where(p => wanted.Contains(p.name)).ToDictionary(p => p.name, p => (Tensor)p.parameter);
        if (found.Count != wanted.Count || found.Values.Any(p => !p.requires_grad))
            throw new InvalidOperationException($"{directory}: the model does not train every expert of {ExpertConfig.FileName} in full");
        return found;
    }
}
