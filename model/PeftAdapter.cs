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
    private const string KeyPrefix = "base_model.model.";

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
        string configPath = Path.Combine(directory, ConfigFile), weightsPath = Path.Combine(directory, WeightsFile);
        if (!File.Exists(configPath)) throw new FileNotFoundException($"--adapter {directory}: {ConfigFile} is missing", configPath);
        if (!File.Exists(weightsPath)) throw new FileNotFoundException($"--adapter {directory}: {WeightsFile} is missing", weightsPath);
        LoraConfig config = ReadConfig(configPath);
        Dictionary<string, Projection> projections = LoraInjection.Projections(model).ToDictionary(p => p.Name, p => p.Projection);

        using var file = SafetensorsFile.Open(weightsPath);
        var modules = new SortedSet<string>(StringComparer.Ordinal);
        foreach (TensorInfo t in file.Tensors)
        {
            if (!t.Name.StartsWith(KeyPrefix, StringComparison.Ordinal) ||
                !(t.Name.EndsWith(".lora_A.weight", StringComparison.Ordinal) || t.Name.EndsWith(".lora_B.weight", StringComparison.Ordinal)))
                throw new InvalidDataException($"{weightsPath}: tensor {t.Name} is not a LoRA matrix (base_model.model.….lora_A/B.weight)");
            modules.Add(t.Name[KeyPrefix.Length..^".lora_A.weight".Length]);
        }
        foreach (string module in modules)
        {
            if (!projections.TryGetValue(module, out Projection? projection))
                throw new InvalidDataException($"{weightsPath}: adapter for {module}, which is not a projection of this model");
            using var scope = NewDisposeScope();
            Tensor a = Read(file, weightsPath, $"{KeyPrefix}{module}.lora_A.weight");
            Tensor b = Read(file, weightsPath, $"{KeyPrefix}{module}.lora_B.weight");
            if (a.shape[0] != config.Rank)
                throw new InvalidDataException($"{weightsPath}: {module}.lora_A.weight has rank {a.shape[0]}, but {ConfigFile} says r = {config.Rank}");
            projection.AttachLora(a, b, config.Scale, config.Dropout);
        }
        if (modules.Count == 0) throw new InvalidDataException($"{weightsPath}: no LoRA tensors");
        return config;
    }

    /// <summary>
    /// Copies the adapter values saved in <paramref name="directory"/> into the adapters already attached to the model
    /// (resuming training keeps the parameters the optimiser holds). The two must cover the same modules.
    /// </summary>
    public static void Restore(DeepSeekV2ForCausalLM model, string directory)
    {
        string weightsPath = Path.Combine(directory, WeightsFile);
        using var file = SafetensorsFile.Open(weightsPath);
        var attached = LoraInjection.Projections(model).Where(p => p.Projection.HasLora).ToList();
        if (file.Tensors.Count != 2 * attached.Count)
            throw new InvalidDataException($"{weightsPath}: holds {file.Tensors.Count} LoRA tensors, the model has {2 * attached.Count}");
        using var noGrad = no_grad();
        foreach ((string name, Projection p) in attached)
        {
            using var scope = NewDisposeScope();
            p.LoraA!.copy_(Read(file, weightsPath, $"{KeyPrefix}{name}.lora_A.weight"));
            p.LoraB!.copy_(Read(file, weightsPath, $"{KeyPrefix}{name}.lora_B.weight"));
        }
    }

    private static LoraConfig ReadConfig(string path)
    {
        JsonObject o;
        try
        {
            o = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new FormatException($"{path}: not a JSON object");
        }
        catch (JsonException e)
        {
            throw new FormatException($"{path}: not valid JSON: {e.Message}", e);
        }
        string Str(string key) => o[key] is JsonValue v && v.TryGetValue(out string? s) ? s : "";
        if (Str("peft_type") != "LORA") throw new FormatException($"{path}: peft_type: expected \"LORA\", got \"{Str("peft_type")}\"");
        if (o["use_dora"] is JsonValue dora && dora.TryGetValue(out bool on) && on)
            throw new FormatException($"{path}: use_dora: true is not supported");
        double Num(string key, double fallback) =>
            o[key] is JsonValue v && v.TryGetValue(out JsonElement e) && e.ValueKind == JsonValueKind.Number ? e.GetDouble() : fallback;
        int rank = (int)Num("r", 8);
        var config = new LoraConfig
        {
            Rank = rank,
            Alpha = Num("lora_alpha", rank),
            Dropout = Num("lora_dropout", 0),
            UseRsLora = o["use_rslora"] is JsonValue r && r.TryGetValue(out bool rs) && rs,
            TargetModules = o["target_modules"] is JsonArray list
                ? list.Select(n => n!.GetValue<string>()).ToArray()
                : [.. LoraConfig.AttentionModules, .. LoraConfig.MlpModules],
        };
        if (config.Rank <= 0) throw new FormatException($"{path}: r: must be positive, got {config.Rank}");
        return config;
    }

    private static Tensor Read(SafetensorsFile file, string path, string name)
    {
        if (!file.TryGet(name, out TensorInfo info)) throw new InvalidDataException($"{path}: {name} is missing");
        if (info.Shape.Length != 2) throw new InvalidDataException($"{path}: {name} must be a matrix, has shape [{string.Join(", ", info.Shape)}]");
        var values = new float[info.ElementCount];
        file.ReadFloat32(info, values);
        return tensor(values, info.Shape);
    }

    private static TensorSource Source(string name, Tensor value) =>
        new(name, DType.F32, value.shape, bytes =>
        {
            using var scope = NewDisposeScope();
            float[] data = value.detach().cpu().to(ScalarType.Float32).data<float>().ToArray();
            MemoryMarshal.AsBytes(data.AsSpan()).CopyTo(bytes);
        });
}
