using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>
/// The embedding table [V, D] as a row lookup. Not nn.Embedding, which would allocate its own table; index_select has
/// the same gradient.
/// </summary>
public sealed class TokenEmbedding : ExplicitModule
{
    public Parameter Weight { get; }

    public TokenEmbedding(Tensor weight) : base("embed_tokens")
    {
        Weight = new Parameter(weight, requires_grad: weight.requires_grad);
        register_parameter("weight", Weight);
    }

    /// <summary>Rows of the table for flat ids [N]: [N, D].</summary>
    public Tensor Lookup(Tensor ids) => Weight.index_select(0, ids);
}
