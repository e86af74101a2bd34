using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using Tune.Formats;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>
/// A PEFT LoRA adapter directory opened for reading: its config and, per adapted module, the matrices A [r, in] and
/// B [out, r]. Validated at open: the config is a LoRA config, every tensor is a lora_A/lora_B matrix of rank r, and
/// each module has both.
/// </summary>
public sealed class PeftAdapterFile : IDisposable
{
    private readonly SafetensorsFile _file;

    public LoraConfig Config { get; }
    public string WeightsPath { get; }

    /// <summary>Checkpoint names of the adapted projections (model.layers.3.self_attn.q_proj), sorted.</summary>
    public IReadOnlyList<string> Modules { get; }

    private PeftAdapterFile(SafetensorsFile file, LoraConfig config, string weightsPath, IReadOnlyList<string> modules) =>
        (_file, Config, WeightsPath, Modules) = (file, config, weightsPath, modules);

    public static PeftAdapterFile Open(string directory)
    {
        string configPath = Path.Combine(directory, PeftAdapter.ConfigFile), weightsPath = Path.Combine(directory, PeftAdapter.WeightsFile);
        if (!File.Exists(configPath)) throw new FileNotFoundException($"--adapter {directory}: {PeftAdapter.ConfigFile} is missing", configPath);
        if (!File.Exists(weightsPath)) throw new FileNotFoundException($"--adapter {directory}: {PeftAdapter.WeightsFile} is missing", weightsPath);
        LoraConfig config = ReadConfig(configPath);
        var file = SafetensorsFile.Open(weightsPath);
        try
        {
            var modules = new SortedSet<string>(StringComparer.Ordinal);
            foreach (TensorInfo t in file.Tensors)
            {
                if (!t.Name.StartsWith(PeftAdapter.KeyPrefix, StringComparison.Ordinal) ||
                    !(t.Name.EndsWith(".lora_A.weight", StringComparison.Ordinal) || t.Name.EndsWith(".lora_B.weight", StringComparison.Ordinal)))
                    throw new InvalidDataException($"{weightsPath}: tensor {t.Name} is not a LoRA matrix (base_model.model.….lora_A/B.weight)");
                if (t.Shape.Length != 2)
                    throw new InvalidDataException($"{weightsPath}: {t.Name} must be a matrix, has shape [{string.Join(", ", t.Shape)}]");
                modules.Add(t.Name[PeftAdapter.KeyPrefix.Length..^".lora_A.weight".Length]);
            }
            if (modules.Count == 0) throw new InvalidDataException($"{weightsPath}: no LoRA tensors");
            foreach (string module in modules)
            {
                TensorInfo a = Info(file, weightsPath, module, "lora_A"), b = Info(file, weightsPath, module, "lora_B");
                if (a.Shape[0] != config.Rank || b.Shape[1] != config.Rank)
                    throw new InvalidDataException($"{weightsPath}: {module} has rank {a.Shape[0]}/{b.Shape[1]}, but {PeftAdapter.ConfigFile} says r = {config.Rank}");
            }
            return new PeftAdapterFile(file, config, weightsPath, modules.ToList());
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>A [r, in] and B [out, r] of <paramref name="module"/>, as float32 CPU tensors.</summary>
    public (Tensor A, Tensor B) Matrices(string module) =>
        (Read(Info(_file, WeightsPath, module, "lora_A")), Read(Info(_file, WeightsPath, module, "lora_B")));

    public void Dispose() => _file.Dispose();

    private static TensorInfo Info(SafetensorsFile file, string path, string module, string matrix)
    {
        string name = $"{PeftAdapter.KeyPrefix}{module}.{matrix}.weight";
        return file.TryGet(name, out TensorInfo info) ? info : throw new InvalidDataException($"{path}: {name} is missing");
    }

    private Tensor Read(TensorInfo info)
    {
        var values = new float[info.ElementCount];
        _file.ReadFloat32(info, values);
        return tensor(values, info.Shape);
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
        bool Flag(string key) => o[key] is JsonValue v && v.TryGetValue(out bool b) && b;
        double Num(string key, double fallback) =>
            o[key] is JsonValue v && v.TryGetValue(out JsonElement e) && e.ValueKind == JsonValueKind.Number ? e.GetDouble() : fallback;
        if (Str("peft_type") != "LORA") throw new FormatException($"{path}: peft_type: expected \"LORA\", got \"{Str("peft_type")}\"");
        if (Flag("use_dora")) throw new FormatException($"{path}: use_dora: true is not supported");
        if (Flag("fan_in_fan_out")) throw new FormatException($"{path}: fan_in_fan_out: true is not supported (no Conv1D layers here)");
        int rank = (int)Num("r", 8);
        if (rank <= 0) throw new FormatException($"{path}: r: must be positive, got {rank}");
        return new LoraConfig
        {
            Rank = rank,
            Alpha = Num("lora_alpha", rank),
            Dropout = Num("lora_dropout", 0),
            UseRsLora = Flag("use_rslora"),
            TargetModules = o["target_modules"] is JsonArray list
                ? list.Select(n => n!.GetValue<string>()).ToArray()
                : [.. LoraConfig.AttentionModules, .. LoraConfig.MlpModules],
        };
    }
}
