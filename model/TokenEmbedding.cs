using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>
/// The embedding table [V, D] as a row lookup. Not nn.Embedding, which would allocate its own table; index_select has
/// the same gradient. A table held as an <see cref="IWeightMatrix"/> (quantised GGUF) hands out only the rows asked for.
/// </summary>
public sealed class TokenEmbedding : ExplicitModule
{
    private readonly Parameter? _weight;
    private readonly IWeightMatrix? _matrix;

    public TokenEmbedding(Tensor weight) : base("embed_tokens")
    {
        _weight = new Parameter(weight, requires_grad: weight.requires_grad);
        register_parameter("weight", _weight);
    }

    public TokenEmbedding(IWeightMatrix matrix) : base("embed_tokens") => _matrix = matrix;

    public Parameter Weight => _weight ?? throw new InvalidOperationException("the embedding table is not a torch tensor (it is a quantised matrix)");

    /// <summary>Rows of the table for flat ids [N]: [N, D].</summary>
    public Tensor Lookup(Tensor ids) => _matrix?.Rows(ids) ?? Weight.index_select(0, ids);

    /// <summary>The output head of a model with tied embeddings: the same table, shared, not copied.</summary>
    public Projection TiedHead(string name) => _matrix is null ? new Projection(name, Weight) : new Projection(name, _matrix);
}
