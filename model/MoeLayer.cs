using TorchSharp;
using Tune.Formats;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>
/// The routed experts of one layer. <see cref="Compute"/> takes token rows already grouped by expert, so each expert
/// runs only on the tokens routed to it; expert parallelism replaces this step with an exchange between ranks.
/// </summary>
public sealed class RoutedExperts : ExplicitModule
{
    private readonly SwiGluMlp[] _experts;

    public RoutedExperts(CheckpointWeights w, string prefix, DeepSeekV2Config c) : base(prefix)
    {
        _experts = new SwiGluMlp[c.NRoutedExperts!.Value];
        for (int e = 0; e < _experts.Length; e++)
        {
            _experts[e] = new SwiGluMlp(w, $"{prefix}.{e}", c.HiddenSize, c.MoeIntermediateSize);
            register_module(e.ToString(), _experts[e]);
        }
    }

    public int Count => _experts.Length;

    /// <summary>Wall time spent in <see cref="Compute"/> so far (forward only): how much of a step the experts take.</summary>
    public TimeSpan ComputeTime { get; private set; }

    public void ResetComputeTime() => ComputeTime = TimeSpan.Zero;

    /// <summary>rows [M, D] sorted by expert, counts[e] rows for expert e; returns outputs in the same order.</summary>
    public Tensor Compute(Tensor rows, long[] counts)
    {
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        using var scope = NewDisposeScope();
        var outputs = new List<Tensor>();
        long offset = 0;
        for (int e = 0; e < counts.Length; e++)
        {
            if (counts[e] == 0) continue;
            outputs.Add(_experts[e].Forward(rows.narrow(0, offset, counts[e])));
            offset += counts[e];
        }
        Tensor result = cat(outputs, 0).MoveToOuterDisposeScope();
        ComputeTime += System.Diagnostics.Stopwatch.GetElapsedTime(started);
        return result;
    }
}

/// <summary>DeepSeek-V2's MoE feed-forward (spec §2.5): router, routed experts on their tokens, plus the shared MLP.</summary>
public sealed class MoeLayer : ExplicitModule
{
    private readonly DeepSeekV2Config _config;
    private readonly MoeRouter _gate;
    private readonly RoutedExperts _experts;
    private readonly SwiGluMlp? _shared;

    public MoeLayer(CheckpointWeights w, string prefix, DeepSeekV2Config c) : base(prefix)
    {
        _config = c;
        _gate = new MoeRouter(w, prefix + ".gate", c);
        _experts = new RoutedExperts(w, prefix + ".experts", c);
        register_module("gate", _gate);
        register_module("experts", _experts);
        if (c.NSharedExperts > 0)
        {
            _shared = new SwiGluMlp(w, prefix + ".shared_experts", c.HiddenSize, (long)c.MoeIntermediateSize * c.NSharedExperts);
            register_module("shared_experts", _shared);
        }
    }

    public RoutedExperts Experts => _experts;

    /// <summary>Called with every routing decision of this layer (expert scoring for ESFT, statistics); null = none.</summary>
    public Action<Routing>? RoutingObserver { get; set; }

    /// <summary>x [B, T, D]. When <paramref name="auxLosses"/> is given, this layer's balance loss is added to it.</summary>
    public Tensor Forward(Tensor x, List<Tensor>? auxLosses)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1], d = x.shape[2];
        Tensor flat = x.reshape(b * t, d);
        Routing routing = _gate.Route(flat);
        RoutingObserver?.Invoke(routing);
        if (auxLosses is not null) auxLosses.Add(MoeRouter.BalanceLoss(routing, b, t, _config.SeqAux).MoveToOuterDisposeScope());

        // Group the (token, choice) pairs by expert: a stable sort keeps each expert's tokens in order.
        long k = routing.Experts.shape[1];
        Tensor choices = routing.Experts.flatten();
        (_, Tensor order) = choices.sort(stable: true);
        Tensor tokenOf = order.div(k, rounding_mode: RoundingMode.floor);
        long[] counts = choices.bincount(null, _experts.Count).cpu().data<long>().ToArray();
        Tensor expertOut = _experts.Compute(flat.index_select(0, tokenOf), counts);

        Tensor weights = routing.Weights.flatten().index_select(0, order).unsqueeze(1);
        Tensor routed = zeros([b * t, d], ScalarType.Float32, x.device)
            .index_add_(0, tokenOf, expertOut.to(ScalarType.Float32) * weights, 1.0)
            .to(x.dtype).view(b, t, d);
        Tensor y = _shared is null ? routed : routed + _shared.Forward(x);
        return y.MoveToOuterDisposeScope();
    }
}
