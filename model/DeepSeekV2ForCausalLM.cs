using TorchSharp;
using Tune.Formats;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>
/// The DeepSeek-V2 causal language model (spec §2.2): embedding, decoder layers, final norm, head. One graph serves
/// training, `tune forward`, `tune generate` and the server; with a <see cref="LatentCache"/> attention runs in the
/// absorbed form. Parameter names are the Hugging Face checkpoint's.
/// </summary>
public sealed class DeepSeekV2ForCausalLM : ExplicitModule
{
    private readonly DecoderStack _model;
    private readonly Projection _head;

    public DeepSeekV2Config Config { get; }
    public TorchRuntime Runtime { get; }

    public DeepSeekV2ForCausalLM(CheckpointWeights w) : base("DeepseekV2ForCausalLM")
    {
        DeepSeekV2Config c = w.Config;
        Config = c;
        Runtime = w.Runtime;
        _model = new DecoderStack(w, c);
        register_module("model", _model);
        _head = c.TieWordEmbeddings
            ? _model.Embedding.TiedHead("lm_head")
            : Projection.Load(w, "lm_head", c.VocabSize, c.HiddenSize);
        if (!c.TieWordEmbeddings) register_module("lm_head", _head);
    }

    public IReadOnlyList<DecoderLayer> Layers => _model.Layers;

    /// <summary>
    /// Loads a Hugging Face checkpoint directory onto the runtime's device and dtype, frozen except the tensors that
    /// <paramref name="trainable"/> names (by checkpoint name), which become float32 copies that train.
    /// With <paramref name="sharding"/>, only this rank's routed experts are loaded and MoE layers exchange tokens.
    /// </summary>
    public static DeepSeekV2ForCausalLM Load(CheckpointDirectory checkpoint, TorchRuntime runtime, Func<string, bool>? trainable = null,
        Distributed.ExpertSharding? sharding = null)
    {
        var model = new DeepSeekV2ForCausalLM(new SafetensorsWeights(checkpoint, runtime, trainable) { Sharding = sharding });
        model.eval();
        return model;
    }

    /// <summary>
    /// Logits [B, T, V] in float32 for ids [B, T] (int64), or [B, 1, V] for the last position only with
    /// <paramref name="lastPositionOnly"/> (prefill before sampling: the head is the widest matrix and the other
    /// positions' logits go unread). With a cache the ids continue the cached tokens and the cache advances by T;
    /// without one positions start at 0 and attention is causal (or <paramref name="mask"/>).
    /// With <paramref name="auxLosses"/>, each MoE layer's balance loss (spec §2.6, without aux_loss_alpha) is
    /// appended, in the caller's scope.
    /// With <paramref name="checkpointLayers"/> (training), each layer's activations are recomputed in backward
    /// instead of kept.
    /// </summary>
    public Tensor Forward(Tensor ids, LatentCache? cache = null, Tensor? mask = null, List<Tensor>? auxLosses = null,
        bool checkpointLayers = false, bool lastPositionOnly = false)
    {
        if (checkpointLayers && cache is not null) throw new ArgumentException("gradient checkpointing is for training, not for cached decoding");
        return Run(ids, cache is null ? null : [cache], mask, auxLosses, checkpointLayers, lastPositionOnly);
    }

    /// <summary>
    /// Cached decoding of several sequences at once: consecutive rows of ids [B, T] continue
    /// <paramref name="caches"/> in order (cache i holds its Batch rows, each cache at its own length), and every cache
    /// advances by T. Projections, experts and the head run on the whole batch, so each weight is read once for all
    /// rows; only attention runs per cache, over that cache's tokens.
    /// </summary>
    public Tensor Forward(Tensor ids, IReadOnlyList<LatentCache> caches, bool lastPositionOnly = false)
    {
        long rows = caches.Sum(c => c.Batch);
        if (caches.Count == 0 || rows != ids.shape[0])
            throw new ArgumentException($"{caches.Count} caches hold {rows} rows; the ids have {ids.shape[0]}");
        if (caches.Distinct().Count() != caches.Count) throw new ArgumentException("a cache appears twice: each holds its own rows");
        return Run(ids, caches, null, null, checkpointLayers: false, lastPositionOnly);
    }

    private Tensor Run(Tensor ids, IReadOnlyList<LatentCache>? caches, Tensor? mask, List<Tensor>? auxLosses,
        bool checkpointLayers, bool lastPositionOnly)
    {
        using var scope = NewDisposeScope();
        long b = ids.shape[0], t = ids.shape[1];
        Tensor h = _model.Embedding.Lookup(ids.flatten().to(Runtime.Device)).to(Runtime.DType).view(b, t, Config.HiddenSize);
        int lossesBefore = auxLosses?.Count ?? 0;
        // A checkpointed layer only back-propagates when its input requires grad; the embedding output of a frozen
        // table does not, so make it a leaf that does (HF's enable_input_require_grads does the same).
        if (checkpointLayers && !h.requires_grad) h = h.detach().requires_grad_(true);
        for (int i = 0; i < _model.Layers.Count; i++)
        {
            DecoderLayer layer = _model.Layers[i];
            if (!checkpointLayers)
            {
                h = layer.Forward(h, caches, mask, auxLosses);
                continue;
            }
            bool withAux = auxLosses is not null && Config.IsMoeLayer(i);
            List<Tensor> outputs = LayerCheckpoint.apply(h, layer, mask, withAux);
            h = outputs[0];
            if (withAux) auxLosses!.Add(outputs[1]);
        }
        if (lastPositionOnly) h = h.narrow(1, t - 1, 1);
        Tensor logits = _head.Forward(_model.Norm.Forward(h)).to(ScalarType.Float32);
        // Only a pass that got this far counts: after a failure every cache still ends where it did, its new
        // entries beyond Length ignored and overwritten by the next pass.
        if (caches is not null)
            foreach (LatentCache cache in caches) cache.Advance((int)t);
        if (auxLosses is not null)
            foreach (Tensor loss in auxLosses.Skip(lossesBefore)) loss.MoveToOuterDisposeScope();
        return logits.MoveToOuterDisposeScope();
    }
}
