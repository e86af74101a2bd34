using TorchSharp;
using TorchSharp.Modules;
using Tune.Formats;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>`model.*` of the checkpoint: token embedding, decoder layers, final norm.</summary>
public sealed class DecoderStack : ExplicitModule
{
    private readonly DecoderLayer[] _layers;

    public TokenEmbedding Embedding { get; }
    public RmsNorm Norm { get; }

    public DecoderStack(CheckpointWeights w, DeepSeekV2Config c) : base("model")
    {
        var rope = new YarnRope(c);
        Embedding = w.LoadEmbedding("model.embed_tokens", c.VocabSize, c.HiddenSize);
        _layers = new DecoderLayer[c.NumHiddenLayers];
        for (int i = 0; i < _layers.Length; i++) _layers[i] = new DecoderLayer(w, c, i, rope);
        Norm = RmsNorm.Load(w, "model.norm", c.HiddenSize, c.RmsNormEps);
        register_module("embed_tokens", Embedding);
        register_module("layers", new ModuleList<DecoderLayer>(_layers));
        register_module("norm", Norm);
    }

    public IReadOnlyList<DecoderLayer> Layers => _layers;
}
