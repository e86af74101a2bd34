using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>
/// A frozen weight W [out, in] that stays in its own storage format outside libtorch (block-quantised rows of a
/// memory-mapped GGUF file, serve/Gguf). <see cref="Projection"/> multiplies by it and <see cref="TokenEmbedding"/>
/// reads rows of it, so a quantised model is the same graph with a different kind of weight. Inference only: no
/// gradient flows through it.
/// </summary>
public interface IWeightMatrix
{
    long OutFeatures { get; }

    long InFeatures { get; }

    /// <summary>x [..., in] on the CPU → x·Wᵀ [..., out] in x's dtype.</summary>
    Tensor Multiply(Tensor x);

    /// <summary>Rows of W for flat ids [N] (int64): [N, in] float32.</summary>
    Tensor Rows(Tensor ids);
}
