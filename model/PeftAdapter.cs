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
/// read this; Tune writes and reads it. Routers trained in full (lora.train_router) are saved whole as PEFT saves
/// modules_to_save: base_model.model.model.layers.{i}.mlp.gate.weight, with "mlp.gate" in modules_to_save.
/// </summary>
public static class PeftAdapter
{
    public const string ConfigFile = PeftAdapterDirectory.ConfigFile;
    public const string WeightsFile = PeftAdapterDirectory.WeightsFile;
    internal const string KeyPrefix = PeftAdapterDirectory.KeyPrefix;

    /// <summary>The modules_to_save entry for the routers: PEFT matches it against the end of module names.</summary>
    public const string RouterModule = "mlp.gate";

    /// <summary>
    /// Writes the model's adapters and trained routers (float32) and a PEFT config that names exactly the adapted
    /// modules.
    /// </summary>
    public static void Save(DeepSeekV2ForCausalLM model, LoraConfig config, string directory, string baseModel)
    {
        var adapted = LoraInjection.Projections(model).Where(p => p.Projection.HasLora)
            .Select(p => (p.Name, (Tensor)p.Projection.LoraA!, (Tensor)p.Projection.LoraB!)).ToList();
        var routers = TrainedRouters(model).Select(r => (r.Name, (Tensor)r.Router.Weight)).ToList();
        bool everyMatch = LoraInjection.Projections(model).All(p => p.Projection.HasLora == config.TargetModules.Contains(p.Name.Split('.')[^1]));
        Save(adapted, routers, everyMatch, config, directory, baseModel);
    }

    /// <summary>
    /// Writes adapters that need not belong to one model object: with expert parallelism, rank 0 gathers the routed
    /// experts' adapters from their ranks and writes them in the single-process order, so the file is the one a single
    /// process writes. <paramref name="everyTargetAdapted"/>: every projection named by target_modules has an adapter,
    /// so the config can list the names instead of the modules.
    /// </summary>
    public static void Save(IReadOnlyList<(string Name, Tensor A, Tensor B)> adapted, IReadOnlyList<(string Name, Tensor Weight)> routers,
        bool everyTargetAdapted, LoraConfig config, string directory, string baseModel)
    {
        if (adapted.Count == 0 && routers.Count == 0) throw new InvalidOperationException("the model has no LoRA adapter or trained router to save");
        var tensors = new List<TensorSource>();
        foreach ((string name, Tensor a, Tensor b) in adapted)
        {
            tensors.Add(Source(KeyPrefix + name + ".lora_A.weight", a));
            tensors.Add(Source(KeyPrefix + name + ".lora_B.weight", b));
        }
        foreach ((string name, Tensor weight) in routers) tensors.Add(Source(KeyPrefix + name + ".weight", weight));
        Directory.CreateDirectory(directory);
        SafetensorsWriter.Write(Path.Combine(directory, WeightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" });

        // PEFT matches a string target_modules with re.fullmatch: listing the adapted modules keeps a per-layer expert
        // selection exact, which the plain list of names could not express.
        string pattern = "^(?:" + string.Join("|", adapted.Select(a => System.Text.RegularExpressions.Regex.Escape(a.Name))) + ")$";
        var json = new JsonObject
        {
            ["peft_type"] = "LORA",
            ["task_type"] = "CAUSAL_LM",
            ["base_model_name_or_path"] = baseModel,
            ["r"] = config.Rank,
            ["lora_alpha"] = config.Alpha,
            ["lora_dropout"] = config.Dropout,
            ["use_rslora"] = config.UseRsLora,
            ["target_modules"] = everyTargetAdapted ? new JsonArray(config.TargetModules.Select(m => (JsonNode)m!).ToArray()) : pattern,
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["inference_mode"] = true,
            ["init_lora_weights"] = true,
            ["modules_to_save"] = routers.Count > 0 ? new JsonArray(RouterModule) : null,
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
    /// Attaches the adapter in <paramref name="directory"/> to the model, unmerged, and swaps in its saved routers.
    /// Every adapter tensor must belong to a projection (or a router) of the model and fit its shape; errors name the
    /// file and tensor.
    /// </summary>
    public static LoraConfig Apply(DeepSeekV2ForCausalLM model, string directory)
    {
        using var adapter = PeftAdapterFile.Open(directory);
        Dictionary<string, Projection> projections = LoraInjection.Projections(model).ToDictionary(p => p.Name, p => p.Projection);
        Dictionary<string, MoeRouter> routers = Routers(model).ToDictionary(r => r.Name, r => r.Router);
        foreach (string module in adapter.Modules)
        {
            if (!projections.TryGetValue(module, out Projection? projection))
                throw new InvalidDataException($"{adapter.WeightsPath}: adapter for {module}, which is not a projection of this model");
            using var scope = NewDisposeScope();
            (Tensor a, Tensor b) = adapter.Matrices(module);
            projection.AttachLora(a, b, adapter.Config.Scale, adapter.Config.Dropout);
        }
        foreach (string module in adapter.SavedModules)
        {
            using var scope = NewDisposeScope();
            MoeRouter router = Router(routers, adapter, module);
            router.ReplaceWeight(SavedWeight(adapter, module, router));
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
        var routers = TrainedRouters(model);
        if (!routers.Select(r => r.Name).Order(StringComparer.Ordinal).SequenceEqual(adapter.SavedModules))
            throw new InvalidDataException($"{adapter.WeightsPath}: saves other routers than the ones this run trains (lora.train_router)");
        using var noGrad = no_grad();
        foreach ((string name, Projection p) in attached)
        {
            using var scope = NewDisposeScope();
            (Tensor a, Tensor b) = adapter.Matrices(name);
            p.LoraA!.copy_(a);
            p.LoraB!.copy_(b);
        }
        // A trained router is the model's own float32 copy, so it can take the values in place (and keep its optimiser state).
        foreach ((string name, MoeRouter router) in routers)
        {
            using var scope = NewDisposeScope();
            router.Weight.copy_(SavedWeight(adapter, name, router));
        }
    }

    /// <summary>Every router of the model with its checkpoint module name (model.layers.1.mlp.gate).</summary>
    public static IEnumerable<(string Name, MoeRouter Router)> Routers(DeepSeekV2ForCausalLM model) =>
        model.named_modules().Where(m => m.module is MoeRouter).Select(m => (m.name, (MoeRouter)m.module));

    private static List<(string Name, MoeRouter Router)> TrainedRouters(DeepSeekV2ForCausalLM model) =>
        Routers(model).Where(r => r.Router.Weight.requires_grad).ToList();

    private static MoeRouter Router(Dictionary<string, MoeRouter> routers, PeftAdapterFile adapter, string module) =>
        routers.TryGetValue(module, out MoeRouter? router)
            ? router
            : throw new InvalidDataException($"{adapter.WeightsPath}: saved weight for {module}, which is not a router (mlp.gate) of this model");

    private static Tensor SavedWeight(PeftAdapterFile adapter, string module, MoeRouter router)
    {
        Tensor weight = adapter.SavedWeight(module);
        if (!weight.shape.SequenceEqual(router.Weight.shape))
            throw new InvalidDataException($"{adapter.WeightsPath}: {KeyPrefix}{module}.weight has shape [{string.Join(", ", weight.shape)}], " +
                                           $"but this model's router is [{string.Join(", ", router.Weight.shape)}]");
        return weight;
    }

    private static TensorSource Source(string name, Tensor value) =>
        new(name, DType.F32, value.shape, bytes =>
        {
            using var scope = NewDisposeScope();
            float[] data = value.detach().cpu().to(ScalarType.Float32).data<float>().ToArray();
            MemoryMarshal.AsBytes(data.AsSpan()).CopyTo(bytes);
        });
}
