using TorchSharp;
using Tune.Formats;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>h = h + MLA(norm(h)); h = h + FFN(norm(h)), the FFN dense or MoE by the config's layer rule.</summary>
public sealed class DecoderLayer : ExplicitModule
{
    private readonly int _index;
    private readonly RmsNorm _inputNorm, _postAttentionNorm;
    private readonly MlaAttention _attention;
    private readonly SwiGluMlp? _dense;
    private readonly MoeLayer? _moe;

    public DecoderLayer(CheckpointWeights w, DeepSeekV2Config c, int index, YarnRope rope) : base(index.ToString())
    {
        _index = index;
        string prefix = $"model.layers.{index}";
        _inputNorm = RmsNorm.Load(w, prefix + ".input_layernorm", c.HiddenSize, c.RmsNormEps);
        _attention = new MlaAttention(w, prefix + ".self_attn", c, rope);
        _postAttentionNorm = RmsNorm.Load(w, prefix + ".post_attention_layernorm", c.HiddenSize, c.RmsNormEps);
        register_module("input_layernorm", _inputNorm);
        register_module("self_attn", _attention);
        register_module("post_attention_layernorm", _postAttentionNorm);
        if (c.IsMoeLayer(index))
        {
            _moe = new MoeLayer(w, prefix + ".mlp", c);
            register_module("mlp", _moe);
        }
        else
        {
            _dense = new SwiGluMlp(w, prefix + ".mlp", c.HiddenSize, c.IntermediateSize);
            register_module("mlp", _dense);
        }
    }

    /// <summary>The layer's MoE block, or null for a dense layer.</summary>
    public MoeLayer? Moe => _moe;

    /// <summary>No dispose scope of its own: the caller's scope collects the few [B, T, D] temporaries, and a balance
    /// loss added to <paramref name="auxLosses"/> lands in the caller's scope too. <paramref name="caches"/> as in
    /// <see cref="MlaAttention.Forward"/>.</summary>
    public Tensor Forward(Tensor h, IReadOnlyList<LatentCache>? caches, Tensor? mask, List<Tensor>? auxLosses)
    {
        h = h + _attention.Forward(_inputNorm.Forward(h), _index, caches, mask);
        Tensor x = _postAttentionNorm.Forward(h);
        return h + (_moe is not null ? _moe.Forward(x, auxLosses) : _dense!.Forward(x));
    }
}
