using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tune.Formats;

/// <summary>The adapter_config.json fields Tune reads (PEFT's LoraConfig), validated at load.</summary>
public sealed record PeftAdapterConfig
{
    public required int Rank { get; init; }
    public required double Alpha { get; init; }
    public double Dropout { get; init; }
    public bool UseRsLora { get; init; }

    /// <summary>The list of module names, or null when the file has a regex string or none.</summary>
    public IReadOnlyList<string>? TargetModules { get; init; }

    /// <summary>Modules saved whole beside the adapter (PEFT's modules_to_save, matched as suffixes of module names).</summary>
    public IReadOnlyList<string> ModulesToSave { get; init; } = [];

    public string? BaseModel { get; init; }

    /// <summary>alpha / r, or alpha / √r with rsLoRA (PEFT's `scaling`).</summary>
    public double Scale => UseRsLora ? Alpha / Math.Sqrt(Rank) : Alpha / Rank;

    public static PeftAdapterConfig Read(string path)
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
        IReadOnlyList<string>? Names(string key) => o[key] switch
        {
            JsonArray list => list.Select(n => n is JsonValue v && v.TryGetValue(out string? s)
                ? s : throw new FormatException($"{path}: {key}: expected a list of module names")).ToArray(),
            null => null,
            JsonValue v when v.GetValueKind() == JsonValueKind.Null => null,
            JsonValue v when key == "target_modules" && v.TryGetValue(out string? _) => null,
            _ => throw new FormatException($"{path}: {key}: expected a list of module names"),
        };
        if (Str("peft_type") != "LORA") throw new FormatException($"{path}: peft_type: expected \"LORA\", got \"{Str("peft_type")}\"");
        if (Flag("use_dora")) throw new FormatException($"{path}: use_dora: true is not supported");
        if (Flag("fan_in_fan_out")) throw new FormatException($"{path}: fan_in_fan_out: true is not supported (no Conv1D layers here)");
        int rank = (int)Num("r", 8);
        if (rank <= 0) throw new FormatException($"{path}: r: must be positive, got {rank}");
        double alpha = Num("lora_alpha", rank);
        if (alpha <= 0) throw new FormatException($"{path}: lora_alpha: must be positive, got {alpha}");
        return new PeftAdapterConfig
        {
            Rank = rank,
            Alpha = alpha,
            Dropout = Num("lora_dropout", 0),
            UseRsLora = Flag("use_rslora"),
            TargetModules = Names("target_modules"),
            ModulesToSave = Names("modules_to_save") ?? [],
            BaseModel = Str("base_model_name_or_path") is { Length: > 0 } b ? b : null,
        };
    }
}

/// <summary>
/// A PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors), opened and validated without
/// libtorch: per adapted module the matrices A [r, in] (…lora_A.weight) and B [out, r] (…lora_B.weight), and the
/// modules saved whole under PEFT's modules_to_save convention (base_model.model.{module}.weight). Every tensor must
/// be one of the two, every module must have both matrices of rank r.
/// </summary>
public sealed class PeftAdapterDirectory : IDisposable
{
    public const string ConfigFile = "adapter_config.json";
    public const string WeightsFile = "adapter_model.safetensors";
    public const string KeyPrefix = "base_model.model.";

    private readonly SafetensorsFile _file;

    private PeftAdapterDirectory(string directory, PeftAdapterConfig config, SafetensorsFile file, IReadOnlyList<string> lora, IReadOnlyList<string> saved) =>
        (Directory, Config, _file, LoraModules, SavedModules) = (directory, config, file, lora, saved);

    public string Directory { get; }
    public PeftAdapterConfig Config { get; }
    public string WeightsPath => _file.Path;

    /// <summary>Checkpoint names of the LoRA-adapted projections (model.layers.3.self_attn.q_proj), sorted.</summary>
    public IReadOnlyList<string> LoraModules { get; }

    /// <summary>Checkpoint names of the modules saved whole (model.layers.1.mlp.gate), sorted.</summary>
    public IReadOnlyList<string> SavedModules { get; }

    public static PeftAdapterDirectory Open(string directory)
    {
        string configPath = Path.Combine(directory, ConfigFile), weightsPath = Path.Combine(directory, WeightsFile);
        if (!File.Exists(configPath)) throw new FileNotFoundException($"--adapter {directory}: {ConfigFile} is missing", configPath);
        if (!File.Exists(weightsPath)) throw new FileNotFoundException($"--adapter {directory}: {WeightsFile} is missing", weightsPath);
        PeftAdapterConfig config = PeftAdapterConfig.Read(configPath);
        var file = SafetensorsFile.Open(weightsPath);
        try
        {
            var lora = new SortedSet<string>(StringComparer.Ordinal);
            var saved = new SortedSet<string>(StringComparer.Ordinal);
            foreach (TensorInfo t in file.Tensors)
            {
                string name = t.Name.StartsWith(KeyPrefix, StringComparison.Ordinal) ? t.Name[KeyPrefix.Length..] : "";
                if (name.EndsWith(".lora_A.weight", StringComparison.Ordinal) || name.EndsWith(".lora_B.weight", StringComparison.Ordinal))
                {
                    if (t.Shape.Length != 2)
                        throw new InvalidDataException($"{weightsPath}: {t.Name} must be a matrix, has shape [{string.Join(", ", t.Shape)}]");
                    lora.Add(name[..^".lora_A.weight".Length]);
                }
                else if (name.EndsWith(".weight", StringComparison.Ordinal) && IsSaved(name[..^".weight".Length], config.ModulesToSave))
                {
                    saved.Add(name[..^".weight".Length]);
                }
                else
                {
                    throw new InvalidDataException($"{weightsPath}: tensor {t.Name} is neither a LoRA matrix (base_model.model.….lora_A/B.weight) " +
                                                   $"nor the weight of a module in {ConfigFile}'s modules_to_save");
                }
            }
            if (lora.Count == 0 && saved.Count == 0) throw new InvalidDataException($"{weightsPath}: no LoRA tensors and no saved modules");
            foreach (string module in lora)
            {
                TensorInfo a = Find(file, module + ".lora_A.weight"), b = Find(file, module + ".lora_B.weight");
                if (a.Shape[0] != config.Rank || b.Shape[1] != config.Rank)
                    throw new InvalidDataException($"{weightsPath}: {module} has rank {a.Shape[0]}/{b.Shape[1]}, but {ConfigFile} says r = {config.Rank}");
            }
            return new PeftAdapterDirectory(directory, config, file, lora.ToList(), saved.ToList());
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public TensorInfo LoraA(string module) => Find(_file, module + ".lora_A.weight");
    public TensorInfo LoraB(string module) => Find(_file, module + ".lora_B.weight");

    /// <summary>The whole weight of a saved module (modules_to_save).</summary>
    public TensorInfo Saved(string module) => Find(_file, module + ".weight");

    public float[] ReadFloat32(TensorInfo info)
    {
        var values = new float[info.ElementCount];
        _file.ReadFloat32(info, values);
        return values;
    }

    public void Dispose() => _file.Dispose();

    // PEFT matches modules_to_save entries against the end of each module's name.
    private static bool IsSaved(string module, IReadOnlyList<string> modulesToSave) =>
        modulesToSave.Any(m => module == m || module.EndsWith("." + m, StringComparison.Ordinal));

    private static TensorInfo Find(SafetensorsFile file, string module) =>
        file.TryGet(KeyPrefix + module, out TensorInfo info) ? info : throw new InvalidDataException($"{file.Path}: {KeyPrefix}{module} is missing");
}
