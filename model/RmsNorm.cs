using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>
/// RMSNorm as DeepSeek's code computes it: statistics in float32, the normalised value cast back to the input dtype,
/// then scaled by the weight (the order matters in bf16). TorchSharp 0.107 has no nn.RMSNorm.
/// </summary>
public sealed class RmsNorm : ExplicitModule
{
    private readonly double _eps;

    public Parameter Weight { get; }

    public RmsNorm(string name, Tensor weight, double eps) : base(name)
    {
        _eps = eps;
        Weight = new Parameter(weight, requires_grad: weight.requires_grad);
        register_parameter("weight", Weight);
    }

    public static RmsNorm Load(CheckpointWeights w, string name, long size, double eps) =>
        new(name, w.Load(name + ".weight", size), eps);

    public Tensor Forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor x32 = x.to(ScalarType.Float32);
        Tensor normed = x32 * (x32.square().mean([-1], keepdim: true) + _eps).rsqrt();
        return (Weight.to(x.dtype) * normed.to(x.dtype)).MoveToOuterDisposeScope();
    }
}
