using TorchSharp;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>down(silu(gate(x)) ⊙ up(x)): the dense MLP, the shared experts (one MLP of width Im·Ns) and each routed expert.</summary>
public sealed class SwiGluMlp : ExplicitModule
{
    private readonly Projection _gate, _up, _down;

    public SwiGluMlp(CheckpointWeights w, string prefix, long hidden, long intermediate) : base(prefix)
    {
        _gate = Projection.Load(w, prefix + ".gate_proj", intermediate, hidden);
        _up = Projection.Load(w, prefix + ".up_proj", intermediate, hidden);
        _down = Projection.Load(w, prefix + ".down_proj", hidden, intermediate);
        register_module("gate_proj", _gate);
        register_module("up_proj", _up);
        register_module("down_proj", _down);
    }

    public Tensor Forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return _down.Forward(nn.functional.silu(_gate.Forward(x)) * _up.Forward(x)).MoveToOuterDisposeScope();
    }
}
