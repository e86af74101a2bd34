using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>
/// A bias-free linear layer y = x·Wᵀ over a weight that comes from the checkpoint (W stored [out, in], as HF does),
/// optionally with a LoRA adapter: y + scale·B·A·dropout(x). torch.nn.Linear would allocate and initialise its own
/// weight first, which a 16B checkpoint cannot afford. The adapter's matrices are registered as lora_A and lora_B,
/// so their names are PEFT's (…q_proj.lora_A.weight).
/// </summary>
public sealed class Projection : ExplicitModule
{
    private Projection? _loraA, _loraB;
    private double _loraScale, _loraDropout;
    private readonly Parameter? _weight;
    private readonly IWeightMatrix? _matrix;

    /// <summary>The dense weight; a projection over an <see cref="IWeightMatrix"/> has none.</summary>
    public Parameter Weight => _weight ?? throw new InvalidOperationException($"{GetName()} multiplies by a quantised matrix, not a torch tensor");

    /// <summary>
    /// Wraps <paramref name="weight"/>, trainable when the tensor requires grad; an existing Parameter is shared as is
    /// (tied embeddings).
    /// </summary>
    public Projection(string name, Tensor weight) : base(name)
    {
        // new Parameter(t) takes over t's native handle, which would leave a tied embedding's Parameter empty.
        _weight = weight as Parameter ?? new Parameter(weight, requires_grad: weight.requires_grad);
        register_parameter("weight", _weight);
    }

    /// <summary>A frozen projection that multiplies by <paramref name="matrix"/> (quantised GGUF weights); inference only.</summary>
    public Projection(string name, IWeightMatrix matrix) : base(name) => _matrix = matrix;

    public long InFeatures => _matrix?.InFeatures ?? Weight.shape[1];
    public long OutFeatures => _matrix?.OutFeatures ?? Weight.shape[0];

    public static Projection Load(CheckpointWeights w, string name, long outFeatures, long inFeatures) =>
        w.LoadProjection(name, outFeatures, inFeatures);

    public bool HasLora => _loraA is not null;
    public Parameter? LoraA => _loraA?.Weight;
    public Parameter? LoraB => _loraB?.Weight;
    public double LoraScale => _loraScale;

    /// <summary>
    /// Adds an adapter with A [r, in] and B [out, r] (kept in float32 whatever the base dtype: they are what trains,
    /// and the optimiser state follows their dtype).
    /// </summary>
    public void AttachLora(Tensor a, Tensor b, double scale, double dropout)
    {
        if (HasLora) throw new InvalidOperationException($"{GetName()} already has a LoRA adapter");
        if (a.shape.Length != 2 || b.shape.Length != 2 || a.shape[1] != InFeatures || b.shape[0] != OutFeatures || a.shape[0] != b.shape[1])
            throw new ArgumentException($"{GetName()}: LoRA A [{string.Join(", ", a.shape)}] and B [{string.Join(", ", b.shape)}] " +
                                        $"do not fit a weight of [{OutFeatures}, {InFeatures}]");
        Device device = _matrix is null ? Weight.device : CPU;
        _loraA = new Projection("lora_A", a.to(ScalarType.Float32, device).requires_grad_(true).DetachFromDisposeScope());
        _loraB = new Projection("lora_B", b.to(ScalarType.Float32, device).requires_grad_(true).DetachFromDisposeScope());
        _loraScale = scale;
        _loraDropout = dropout;
        register_module("lora_A", _loraA);
        register_module("lora_B", _loraB);
    }

    /// <summary>
    /// Removes the adapter and frees its matrices, leaving the base weight (the server switches adapters per request
    /// on one base model).
    /// </summary>
    public void DetachLora()
    {
        if (_loraA is null) return;
        register_module("lora_A", null!);
        register_module("lora_B", null!);
        _loraA.Dispose();
        _loraB!.Dispose();
        _loraA = _loraB = null;
        _loraScale = _loraDropout = 0;
    }

    /// <summary>W, plus scale·B·A when an adapter is attached (for the absorbed attention and for merging).</summary>
    public Tensor EffectiveWeight()
    {
        if (_matrix is not null) throw new InvalidOperationException($"{GetName()} multiplies by a quantised matrix, which has no dense weight");
        if (_loraA is null) return Weight;
        using var scope = NewDisposeScope();
        Tensor delta = matmul(_loraB!.Weight, _loraA.Weight) * _loraScale;
        return (Weight.to(ScalarType.Float32) + delta).to(Weight.dtype).MoveToOuterDisposeScope();
    }

    public Tensor Forward(Tensor x)
    {
        if (_loraA is null) return BaseForward(x);
        using var scope = NewDisposeScope();
        Tensor input = x.to(ScalarType.Float32);
        if (_loraDropout > 0 && training) input = nn.functional.dropout(input, _loraDropout, training: true);
        Tensor delta = _loraB!.Forward(_loraA.Forward(input)) * _loraScale;
        return (BaseForward(x) + delta.to(x.dtype)).MoveToOuterDisposeScope();
    }

    private Tensor BaseForward(Tensor x) => _matrix?.Multiply(x) ?? nn.functional.linear(x, BaseWeightFor(x));

    /// <summary>A trainable weight is a float32 master copy; it computes in the activations' dtype.</summary>
    private Tensor BaseWeightFor(Tensor x) => Weight.dtype == x.dtype ? Weight : Weight.to(x.dtype);
}
