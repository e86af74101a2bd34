using TorchSharp;
using Tune.Formats;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>
/// Multi-head latent attention (spec §2.3, §3). Keys and values come from one low-rank latent per token: the
/// latent c_kv and a single shared rope key k_pe are projected from x, the latent is normalised and up-projected by
/// kv_b_proj into per-head k_nope and v. Two forms compute the same scores: the training form materialises per-head
/// keys and values; the absorbed form (used with a <see cref="LatentCache"/>) folds kv_b_proj's key half into the
/// query and its value half into the output, so the cache holds only ĉ and k̃_pe.
/// </summary>
public sealed class MlaAttention : ExplicitModule
{
    private readonly int _heads, _nope, _ropeDim, _v, _rank;
    private readonly YarnRope _rope;
    private readonly Projection? _qProj, _qAProj, _qBProj;
    private readonly RmsNorm? _qANorm;
    private readonly Projection _kvAProj, _kvBProj, _oProj;
    private readonly RmsNorm _kvANorm;
    private readonly AbsorbedKv? _absorbedKv;

    public MlaAttention(CheckpointWeights w, string prefix, DeepSeekV2Config c, YarnRope rope) : base(prefix)
    {
        (_heads, _nope, _ropeDim, _v, _rank, _rope) =
            (c.NumAttentionHeads, c.QkNopeHeadDim, c.QkRopeHeadDim, c.VHeadDim, c.KvLoraRank, rope);
        long d = c.HiddenSize, qOut = (long)_heads * c.QHeadDim;
        // The HF code builds both latent norms with the default eps 1e-6, not rms_norm_eps.
        const double latentEps = 1e-6;
        if (c.QLoraRank is { } rq)
        {
            _qAProj = Projection.Load(w, prefix + ".q_a_proj", rq, d);
            _qANorm = RmsNorm.Load(w, prefix + ".q_a_layernorm", rq, latentEps);
            _qBProj = Projection.Load(w, prefix + ".q_b_proj", qOut, rq);
            register_module("q_a_proj", _qAProj);
            register_module("q_a_layernorm", _qANorm);
            register_module("q_b_proj", _qBProj);
        }
        else
        {
            _qProj = Projection.Load(w, prefix + ".q_proj", qOut, d);
            register_module("q_proj", _qProj);
        }
        _kvAProj = Projection.Load(w, prefix + ".kv_a_proj_with_mqa", _rank + _ropeDim, d);
        _kvANorm = RmsNorm.Load(w, prefix + ".kv_a_layernorm", _rank, latentEps);
        _kvBProj = Projection.Load(w, prefix + ".kv_b_proj", (long)_heads * (_nope + _v), _rank);
        _oProj = Projection.Load(w, prefix + ".o_proj", d, (long)_heads * _v);
        _absorbedKv = w.LoadAbsorbedKv(prefix + ".kv_b_proj");
        register_module("kv_a_proj_with_mqa", _kvAProj);
        register_module("kv_a_layernorm", _kvANorm);
        register_module("kv_b_proj", _kvBProj);
        register_module("o_proj", _oProj);
    }

    /// <summary>
    /// x [B, T, D]. Without caches, positions start at 0 and attention is causal; <paramref name="mask"/> (bool,
    /// true = may attend, broadcastable to [B, 1, T, keys]) replaces the causal mask, e.g. to keep packed documents
    /// apart. With <paramref name="caches"/>, consecutive rows of x continue the caches in order (cache i holds its
    /// Batch rows), each at positions Length… of its own cache; a mask then needs a single cache.
    /// </summary>
    public Tensor Forward(Tensor x, int layer, IReadOnlyList<LatentCache>? caches, Tensor? mask = null)
    {
        if (mask is not null && caches is { Count: > 1 }) throw new ArgumentException("a mask applies to the keys of a single cache");
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];

        Tensor q = (_qProj is not null ? _qProj.Forward(x) : _qBProj!.Forward(_qANorm!.Forward(_qAProj!.Forward(x))))
            .view(b, t, _heads, _nope + _ropeDim).transpose(1, 2);
        Tensor qNope = q.narrow(-1, 0, _nope);
        Tensor kva = _kvAProj.Forward(x);
        Tensor latent = _kvANorm.Forward(kva.narrow(-1, 0, _rank));
        (Tensor cos, Tensor sin) = Angles(caches, t, x.device);
        Tensor qRope = YarnRope.Apply(q.narrow(-1, _nope, _ropeDim), cos.unsqueeze(-3), sin.unsqueeze(-3));
        Tensor kRope = YarnRope.Apply(kva.narrow(-1, _rank, _ropeDim), cos, sin);

        Tensor o = caches is null
            ? Naive(qNope, qRope, latent, kRope, mask)
            : Absorbed(qNope, qRope, latent, kRope, layer, caches, mask);
        return _oProj.Forward(o.transpose(1, 2).reshape(b, t, (long)_heads * _v)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// cos and sin of the rows' positions: [T, dr/2] when all rows share them, else [B, T, dr/2] with each cache's
    /// rows from that cache's length on.
    /// </summary>
    private (Tensor Cos, Tensor Sin) Angles(IReadOnlyList<LatentCache>? caches, long t, Device device)
    {
        if (caches is null) return _rope.Angles(0, t, device);
        if (caches.Count == 1) return _rope.Angles(caches[0].Length, t, device);
        var cos = new Tensor[caches.Count];
        var sin = new Tensor[caches.Count];
        for (int i = 0; i < caches.Count; i++)
        {
            (Tensor c, Tensor s) = _rope.Angles(caches[i].Length, t, device);
            (cos[i], sin[i]) = (c.expand(caches[i].Batch, t, -1), s.expand(caches[i].Batch, t, -1));
        }
        return (cat(cos, 0), cat(sin, 0));
    }

    /// <summary>Training form: per-head k = [k_nope ; k_pe] and v, then scaled dot-product attention.</summary>
    private Tensor Naive(Tensor qNope, Tensor qRope, Tensor latent, Tensor kRope, Tensor? mask)
    {
        long b = latent.shape[0], t = latent.shape[1];
        Tensor kv = _kvBProj.Forward(latent).view(b, t, _heads, _nope + _v).transpose(1, 2);
        Tensor k = cat([kv.narrow(-1, 0, _nope), kRope.unsqueeze(1).expand(b, _heads, t, _ropeDim)], -1);
        Tensor v = kv.narrow(-1, _nope, _v);
        // TorchSharp's SDPA takes no scale and uses 1/sqrt(head dim): fold the wanted scale into q.
        Tensor qScaled = cat([qNope, qRope], -1) * (_rope.SoftmaxScale * Math.Sqrt(_nope + _ropeDim));
        return mask is null
            ? nn.functional.scaled_dot_product_attention(qScaled, k, v, is_casual: true)
            : nn.functional.scaled_dot_product_attention(qScaled, k, v, attn_mask: mask);
    }

    /// <summary>
    /// Inference form over the cached latents: score = (W_UKᵀ q_nope)·ĉ + q_pe·k_pe, output = W_UV (Σ p ĉ). The
    /// absorbed W_UK and W_UV multiply all rows at once; scores and mixing run per cache, over its own tokens.
    /// </summary>
    private Tensor Absorbed(Tensor qNope, Tensor qRope, Tensor latent, Tensor kRope, int layer, IReadOnlyList<LatentCache> caches,
        Tensor? mask)
    {
        // A LoRA adapter on kv_b_proj changes both halves, which only the dense form includes.
        AbsorbedKv? halves = _kvBProj.HasLora ? null : _absorbedKv;
        Tensor? kvB = halves is null ? _kvBProj.EffectiveWeight().view(_heads, _nope + _v, _rank) : null;

        Tensor qLatent = halves is null                               // [B, H, T, r]
            ? matmul(qNope, kvB!.narrow(1, 0, _nope))                 // W_UK [H, dn, r]
            : AbsorbedKv.PerHead(halves.Keys, qNope);
        var mixed = new Tensor[caches.Count];                         // [Bi, H, T, r] each
        long row = 0;
        for (int i = 0; i < caches.Count; i++)
        {
            LatentCache cache = caches[i];
            long n = cache.Batch;
            (Tensor latents, Tensor keyRope) = cache.Append(layer, latent.narrow(0, row, n), kRope.narrow(0, row, n));
            mixed[i] = Attend(qLatent.narrow(0, row, n), qRope.narrow(0, row, n), latents.unsqueeze(1), keyRope.unsqueeze(1),
                cache.Length, mask);
            row += n;
        }
        Tensor all = mixed.Length == 1 ? mixed[0] : cat(mixed, 0);
        return halves is null                                         // [B, H, T, dv]
            ? matmul(all, kvB!.narrow(1, _nope, _v).transpose(-1, -2))     // W_UV [H, dv, r]
            : AbsorbedKv.PerHead(halves.Values, all);
    }

    /// <summary>
    /// softmax(scale·(q_lat·ĉᵀ + q_pe·k_peᵀ))·ĉ for queries at positions start… over latents [B, 1, S, r] and rope
    /// keys [B, 1, S, dr], causal (and <paramref name="mask"/>).
    /// </summary>
    private Tensor Attend(Tensor qLatent, Tensor qRope, Tensor latents, Tensor keyRope, long start, Tensor? mask)
    {
        long t = qLatent.shape[2], keys = latents.shape[2];
        Tensor scores = (matmul(qLatent, latents.transpose(-1, -2)) + matmul(qRope, keyRope.transpose(-1, -2)))
            .to(ScalarType.Float32) * _rope.SoftmaxScale;
        Tensor allowed = arange(keys, device: scores.device).unsqueeze(0)
            .le(arange(start, start + t, device: scores.device).unsqueeze(1));   // [T, S]
        if (mask is not null) allowed = allowed.logical_and(mask);
        Tensor probs = scores.masked_fill(allowed.logical_not(), double.NegativeInfinity)
            .softmax(-1).to(qLatent.dtype);
        return matmul(probs, latents);
    }
}
