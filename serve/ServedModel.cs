using TorchSharp;
using Tune.Formats;
using Tune.Model;
using Tune.Model.Tokenization;
using Tune.Serve.Gguf;

namespace Tune.Serve;

/// <summary>
/// The one model a server runs, its tokenizer, and the PEFT adapters requests may choose by name. Adapters stay
/// unmerged: one at a time is attached to the shared base weights, so switching costs reading the (small) adapter
/// file, never a second copy of the model.
/// </summary>
public sealed class ServedModel : IDisposable
{
    private readonly Action _release;
    private readonly IReadOnlyDictionary<string, string> _adapterDirectories;
    private readonly List<(MoeRouter Router, TorchSharp.torch.Tensor Weight)> _baseRouters;

    public DeepSeekV2ForCausalLM Model { get; }
    public DeepSeekTokenizer Tokenizer { get; }

    /// <summary>The base model's name in /v1/models and in requests' `model`.</summary>
    public string Id { get; }

    public IReadOnlyList<string> AdapterNames { get; }

    /// <summary>The adapter attached now; null = the base model.</summary>
    public string? ActiveAdapter { get; private set; }

    /// <param name="release">Frees the model and then whatever its weights point into (a mapped checkpoint or GGUF file).</param>
    private ServedModel(DeepSeekV2ForCausalLM model, DeepSeekTokenizer tokenizer, string id,
        IReadOnlyDictionary<string, string> adapters, Action release)
    {
        Model = model;
        Tokenizer = tokenizer;
        Id = id;
        _adapterDirectories = adapters;
        AdapterNames = adapters.Keys.Order(StringComparer.Ordinal).ToList();
        _release = release;
        // An adapter may carry whole routers (PEFT modules_to_save) that replace the model's; keep the base ones to go back to.
        _baseRouters = PeftAdapter.Routers(model).Select(r => (r.Router, r.Router.Weight.detach().clone().DetachFromDisposeScope())).ToList();
    }

    /// <summary>
    /// The single place a --model path becomes a model: a Hugging Face checkpoint directory, or a .gguf file through
    /// the GGUF loader (its weights stay quantised and memory-mapped; its tokenizer comes from the file's metadata). Every adapter is attached once and removed again, so a bad adapter fails at startup, not on
    /// the first request that names it.
    /// </summary>
    public static ServedModel Load(ServeOptions options, TorchRuntime runtime)
    {
        string path = options.ModelPath;
        bool gguf = path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase);
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        string id = gguf ? Path.GetFileNameWithoutExtension(full) : Path.GetFileName(full);
        foreach (string name in options.Adapters.Keys)
            if (name == id) throw new ArgumentException($"--adapter {name}=…: the name is the base model's; choose another");

        ServedModel served;
        if (gguf)
        {
            var file = GgufModel.Load(path, runtime, options.Threads ?? Environment.ProcessorCount);
            // The quantised products, about 90 % of a decode step, run on the kernels' own threads. libtorch's OpenMP
            // workers spin after each of its small ops in between and take those cores (measured, 2 threads: decode
            // 15 tok/s with 2 libtorch threads, 22 with 1), so libtorch runs on one thread while a GGUF file is served.
            int torchThreads = torch.get_num_threads();
            torch.set_num_threads(1);
            served = new ServedModel(file.Model, file.Tokenizer, id, options.Adapters, () =>
            {
                file.Dispose();
                torch.set_num_threads(torchThreads);
            });
        }
        else
        {
            DeepSeekTokenizer tokenizer = DeepSeekTokenizer.Load(path);
            var checkpoint = CheckpointDirectory.Open(path);
            DeepSeekV2ForCausalLM model;
            try
            {
                model = DeepSeekV2ForCausalLM.Load(checkpoint, runtime);
            }
            catch
            {
                checkpoint.Dispose();
                throw;
            }
            served = new ServedModel(model, tokenizer, id, options.Adapters, () =>
            {
                model.Dispose();
                checkpoint.Dispose();
            });
        }
        try
        {
            foreach (string name in served.AdapterNames) served.Activate(name);
            served.Activate(null);
            return served;
        }
        catch
        {
            served.Dispose();
            throw;
        }
    }

    /// <summary>The adapter to use for a request's `model`, or null for the base; throws for a name that is neither.</summary>
    public bool TryResolve(string? requested, out string? adapter)
    {
        adapter = null;
        if (string.IsNullOrEmpty(requested) || requested == Id) return true;
        if (!_adapterDirectories.ContainsKey(requested)) return false;
        adapter = requested;
        return true;
    }

    /// <summary>Attaches <paramref name="adapter"/> (null = none) in place of whatever adapter is attached.</summary>
    public void Activate(string? adapter)
    {
        if (adapter == ActiveAdapter) return;
        foreach ((_, Projection projection) in LoraInjection.Projections(Model)) projection.DetachLora();
        foreach ((MoeRouter router, TorchSharp.torch.Tensor weight) in _baseRouters) router.ReplaceWeight(weight);
        ActiveAdapter = null;
        if (adapter is null) return;
        PeftAdapter.Apply(Model, _adapterDirectories[adapter]);
        ActiveAdapter = adapter;
    }

    public void Dispose()
    {
        foreach ((_, TorchSharp.torch.Tensor weight) in _baseRouters) weight.Dispose();
        _release();
    }
}
