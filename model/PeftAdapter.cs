using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using Tune.Formats;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>
/// LoRA adapters in Hugging Face PEFT's directory format: adapter_config.json and adapter_model.safetensors with keys
/// base_model.model.{module}.lora_A.weight [r, in] / lora_B.weight [out, r]. PEFT, vLLM and llama.cpp's converter
/// read this; Tune writes and reads it.
/// </summary>
public static class PeftAdapter
{
    public const string ConfigFile = "adapter_config.json";
    public const string WeightsFile = "adapter_model.safetensors";
    internal const string KeyPrefix = "base_model.model.";

    /// <summary>Writes the model's adapters (float32) and a PEFT config that names exactly the adapted modules.</summary>
    public static void Save(DeepSeekV2ForCausalLM model, LoraConfig config, string directory, string baseModel)
    {
        var adapted = LoraInjection.Projections(model).Where(p => p.Projection.HasLora).ToList();
        if (adapted.Count == 0) throw new InvalidOperationException("the model has no LoRA adapter to save");
        var tensors = new List<TensorSource>();
        foreach ((string name, Projection p) in adapted)
        {
            tensors.Add(Source(KeyPrefix + name + ".lora_A.weight", p.LoraA!));
            tensors.Add(Source(KeyPrefix + name + ".lora_B.weight", p.LoraB!));
        }
        Directory.CreateDirectory(directory);
        SafetensorsWriter.Write(Path.Combine(directory, WeightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" });

        // PEFT matches a string target_modules with re.fullmatch: listing the adapted modules keeps a per-layer expert
        // selection exact, which the plain list of names could not express.
        string pattern = "^(?:" + string.Join("|", adapted.Select(a => System.Text.RegularExpressions.Regex.Escape(a.Name))) + ")$";
        bool everyMatch = LoraInjection.Projections(model).All(p => p.Projection.HasLora == config.TargetModules.Contains(p.Name.Split('.')[^1]));
        var json = new JsonObject
        {
            ["peft_type"] = "LORA",
            ["task_type"] = "CAUSAL_LM",
            ["base_model_name_or_path"] = baseModel,
            ["r"] = config.Rank,
            ["lora_alpha"] = config.Alpha,
            ["lora_dropout"] = config.Dropout,
            ["use_rslora"] = config.UseRsLora,
            ["target_modules"] = everyMatch ? new JsonArray(config.TargetModules.Select(m => (JsonNode)m!).ToArray()) : pattern,
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["inference_mode"] = true,
            ["init_lora_weights"] = true,
            ["modules_to_save"] = null,
            ["layers_to_transform"] = null,
            ["layers_pattern"] = null,
            ["rank_pattern"] = new JsonObject(),
            ["alpha_pattern"] = new JsonObject(),
            ["use_dora"] = false,
            ["revision"] = null,
        };
        AtomicFile.Write(Path.Combine(directory, ConfigFile),
            s => s.Write(System.Text.Encoding.UTF8.GetBytes(json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n")));
    }

    /// <summary>
    /// Attaches the adapter in <paramref name="directory"/> to the model, unmerged. Every adapter tensor must belong to
    /// a projection of the model and fit its shape; errors name the file and tensor.
    /// </summary>
    public static LoraConfig Apply(DeepSeekV2ForCausalLM model, string directory)
    {
        using var adapter = PeftAdapterFile.Open(directory);
        Dictionary<string, Projection> projections = LoraInjection.Projections(model).ToDictionary(p => p.Name, p => p.Projection);
        foreach (string module in adapter.Modules)
        {
            if (!projections.TryGetValue(module, out Projection? projection))
                throw new InvalidDataException($"{adapter.WeightsPath}: adapter for {module}, which is not a projection of this model");
            using var scope = NewDisposeScope();
            (Tensor a, Tensor b) = adapter.Matrices(module);
            projection.AttachLora(a, b, adapter.Config.Scale, adapter.Config.Dropout);
        }
        return adapter.Config;
    }

    /// <summary>
    /// Copies the adapter values saved in <paramref name="directory"/> into the adapters already attached to the model
    /// (resuming training keeps the parameters the optimiser holds). The two must cover the same modules.
    /// </summary>
    public static void Restore(DeepSeekV2ForCausalLM model, string directory)
    {
        using var adapter = PeftAdapterFile.Open(directory);
        var attached = LoraInjection.Projections(model).Where(p => p.Projection.HasLora).ToList();
        if (!attached.Select(a => a.Name).Order(StringComparer.Ordinal).SequenceEqual(adapter.Modules))
            throw new InvalidDataException($"{adapter.WeightsPath}: adapts other modules than the model being trained");
        using var noGrad = no_grad();
        foreach ((string name, Projection p) in attached)
        {
            using var scope = NewDisposeScope();
            (Tensor a, Tensor b) = adapter.Matrices(name);
            p.LoraA!.copy_(a);
            p.LoraB!.copy_(b);
        }
    }

    private static TensorSource Source(string name, Tensor value) =>
        new(name, DType.F32, value.shape, bytes =>
        {
            using var scope = NewDisposeScope();
            float[] data = value.detach().cpu().to(ScalarType.Float32).data<float>().ToArray();
            MemoryMarshal.AsBytes(data.AsSpan()).CopyTo(bytes);
        });
}
