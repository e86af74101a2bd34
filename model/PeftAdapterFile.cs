using TorchSharp;
using Tune.Formats;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>
/// A PEFT LoRA adapter directory opened for reading (validated by <see cref="PeftAdapterDirectory"/>): its config as a
/// <see cref="LoraConfig"/> and, per adapted module, the matrices A [r, in] and B [out, r]; and the modules saved
/// whole (modules_to_save: the routers trained with lora.train_router).
/// </summary>
public sealed class PeftAdapterFile : IDisposable
{
    private readonly PeftAdapterDirectory _directory;

    private PeftAdapterFile(PeftAdapterDirectory directory, LoraConfig config) => (_directory, Config) = (directory, config);

    public LoraConfig Config { get; }
    public string WeightsPath => _directory.WeightsPath;

    /// <summary>Checkpoint names of the adapted projections (model.layers.3.self_attn.q_proj), sorted.</summary>
    public IReadOnlyList<string> Modules => _directory.LoraModules;

    /// <summary>Checkpoint names of the modules saved whole (model.layers.1.mlp.gate), sorted.</summary>
    public IReadOnlyList<string> SavedModules => _directory.SavedModules;

    public static PeftAdapterFile Open(string directory)
    {
        var adapter = PeftAdapterDirectory.Open(directory);
        PeftAdapterConfig c = adapter.Config;
        return new PeftAdapterFile(adapter, new LoraConfig
        {
            Rank = c.Rank,
            Alpha = c.Alpha,
            Dropout = c.Dropout,
            UseRsLora = c.UseRsLora,
            TargetModules = c.TargetModules ?? [.. LoraConfig.AttentionModules, .. LoraConfig.MlpModules],
        });
    }

    /// <summary>A [r, in] and B [out, r] of <paramref name="module"/>, as float32 CPU tensors.</summary>
    public (Tensor A, Tensor B) Matrices(string module) => (Read(_directory.LoraA(module)), Read(_directory.LoraB(module)));

    /// <summary>The saved weight of <paramref name="module"/> (one of <see cref="SavedModules"/>), as a float32 CPU tensor.</summary>
    public Tensor SavedWeight(string module) => Read(_directory.Saved(module));

    public void Dispose() => _directory.Dispose();

    private Tensor Read(TensorInfo info) => tensor(_directory.ReadFloat32(info), info.Shape);
}
