using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>
/// A bias-free linear layer y = x·Wᵀ over a weight that comes from the checkpoint (W stored [out, in], as HF does).
/// torch.nn.Linear would allocate and initialise its own weight first, which a 16B checkpoint cannot afford.
/// </summary>
public sealed class Projection : nn.Module<Tensor, Tensor>
{
    public Parameter Weight { get; }

    /// <summary>Wraps <paramref name="weight"/>; an existing Parameter is shared as is (tied embeddings).</summary>
    public Projection(string name, Tensor weight) : base(name)
    {
        // new Parameter(t) takes over t's native handle, which would leave a tied embedding's Parameter empty.
        Weight = weight as Parameter ?? new Parameter(weight, requires_grad: false);
        register_parameter("weight", Weight);
    }

    public long InFeatures => Weight.shape[1];
    public long OutFeatures => Weight.shape[0];

    public static Projection Load(CheckpointWeights w, string name, long outFeatures, long inFeatures) =>
        new(name, w.Load(name + ".weight", outFeatures, inFeatures));

    public override Tensor forward(Tensor x) => nn.functional.linear(x, Weight);
}
