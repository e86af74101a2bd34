using TorchSharp;
using Tune.Formats;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>
/// The routed experts of one layer, or with expert parallelism this rank's contiguous block of them (module names keep
/// the global expert index, so adapters and checkpoints name experts the same way at any number of ranks).
/// <see cref="Compute"/> takes token rows already grouped by expert, so each expert runs only on the tokens routed to it.
/// </summary>
public sealed class RoutedExperts : ExplicitModule
{
    private readonly SwiGluMlp[] _experts;

    public RoutedExperts(CheckpointWeights w, string prefix, DeepSeekV2Config c) : base(prefix)
    {
        Count = c.NRoutedExperts!.Value;
        Sharding = w.Sharding;
        First = Sharding?.First ?? 0;
        _experts = new SwiGluMlp[Sharding?.PerRank ?? Count];
        for (int i = 0; i < _experts.Length; i++)
        {
            int e = First + i;
            _experts[i] = new SwiGluMlp(w, $"{prefix}.{e}", c.HiddenSize, c.MoeIntermediateSize);
            register_module(e.ToString(), _experts[i]);
        }
    }

    /// <summary>Routed experts of the layer, on all ranks together.</summary>
    public int Count { get; }

    /// <summary>The first expert held here; this rank holds <see cref="Held"/> experts from it on.</summary>
    public int First { get; }

    public int Held => _experts.Length;

    public Distributed.ExpertSharding? Sharding { get; }

    /// <summary>Wall time spent in <see cref="Compute"/> so far (forward only): how much of a step the experts take.</summary>
    public TimeSpan ComputeTime { get; private set; }

    public void ResetComputeTime() => ComputeTime = TimeSpan.Zero;

    /// <summary>
    /// rows [M, D] sorted by expert, counts[i] rows for held expert First + i; returns outputs in the same order.
    /// Experts without rows are skipped, so their parameters get no gradient, as in a single process.
    /// </summary>
    public Tensor Compute(Tensor rows, long[] counts)
    {
        if (counts.Length != Held) throw new ArgumentException($"{counts.Length} expert counts for {Held} held experts");
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
        if (auxLosses is not null) auxLosses.Add(BalanceLoss(routing, b, t).MoveToOuterDisposeScope());

        // Group the (token, choice) pairs by expert: a stable sort keeps each expert's tokens in order.
        long k = routing.Experts.shape[1];
        Tensor choices = routing.Experts.flatten();
        (_, Tensor order) = choices.sort(stable: true);
        Tensor tokenOf = order.div(k, rounding_mode: RoundingMode.floor);
        long[] counts = choices.bincount(null, _experts.Count).cpu().data<long>().ToArray();
        Tensor grouped = flat.index_select(0, tokenOf);
        Tensor expertOut = _experts.Sharding is null ? _experts.Compute(grouped, counts) : ComputeOnOwners(grouped, counts, _experts.Sharding);

        Tensor weights = routing.Weights.flatten().index_select(0, order).unsqueeze(1);
        Tensor routed = zeros([b * t, d], ScalarType.Float32, x.device)
            .index_add_(0, tokenOf, expertOut.to(ScalarType.Float32) * weights, 1.0)
            .to(x.dtype).view(b, t, d);
        Tensor y = _shared is null ? routed : routed + _shared.Forward(x);
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The balance loss; with expert parallelism, this rank's share of the loss of all ranks' batches together (every
    /// rank's batch has the same shape): the shares sum to that loss, and each share's gradient is its gradient through
    /// this rank's tokens.
    /// </summary>
    private Tensor BalanceLoss(Routing routing, long b, long t)
    {
        Distributed.ExpertSharding? sharding = _experts.Sharding;
        if (sharding is null) return MoeRouter.BalanceLoss(routing, b, t, _config.SeqAux);
        int ranks = sharding.Collectives.Size;
        // Per-sequence statistics: the loss of all batches is the mean over every rank's sequences.
        if (_config.SeqAux) return MoeRouter.BalanceLoss(routing, b, t, seqAux: true) / ranks;
        // Over the whole batch, the load f counts every rank's picks; it carries no gradient, so summing it is enough.
        long e = routing.Scores.shape[1], k = routing.Experts.shape[1];
        Tensor picks = nn.functional.one_hot(routing.Experts.flatten(), e).to(ScalarType.Float32).sum([0]).contiguous();
        sharding.Collectives.AllReduceSum(picks);
        Tensor f = picks / (b * t * k * ranks / (double)e);
        Tensor p = routing.Scores.sum([0]) / (b * t * ranks);
        return (p * f).sum();
    }

    /// <summary>
    /// Expert parallelism: rows grouped by expert (hence by owning rank) go to their owners, which compute them and send
    /// the results back in the same order. Every rank makes the same exchanges even when it sends or receives nothing.
    /// </summary>
    private Tensor ComputeOnOwners(Tensor grouped, long[] counts, Distributed.ExpertSharding sharding)
    {
        Distributed.ICollectives collectives = sharding.Collectives;
        int ranks = collectives.Size, held = sharding.PerRank;
        // Block p of counts is rank p's experts; what comes back is, per source rank, the counts for the experts here.
        long[] incoming = collectives.AllToAll(counts);
        long[] sendRows = new long[ranks], recvRows = new long[ranks];
        for (int p = 0; p < ranks; p++)
        {
            sendRows[p] = counts.AsSpan(p * held, held).ToArray().Sum();
            recvRows[p] = incoming.AsSpan(p * held, held).ToArray().Sum();
        }
        Tensor anchor = zeros(0, ScalarType.Float32, grouped.device, requires_grad: true);
        Tensor received = Distributed.RowExchange.apply(grouped, sendRows, recvRows, collectives, anchor);

        // Received rows are source-major (each source's rows grouped by expert); the experts want them expert-major.
        var order = new long[recvRows.Sum()];
        var local = new long[held];
        int next = 0;
        long[] sourceStart = new long[ranks];
        for (int p = 1; p < ranks; p++) sourceStart[p] = sourceStart[p - 1] + recvRows[p - 1];
        for (int e = 0; e < held; e++)
            for (int p = 0; p < ranks; p++)
            {
                long start = sourceStart[p] + incoming.AsSpan(p * held, e).ToArray().Sum();
                for (long j = 0; j < incoming[p * held + e]; j++) order[next++] = start + j;
                local[e] += incoming[p * held + e];
            }
        var inverse = new long[order.Length];
        for (int i = 0; i < order.Length; i++) inverse[order[i]] = i;
        Tensor byExpert = received.index_select(0, tensor(order, device: grouped.device));
        // With no rows here the (empty) received tensor itself goes back, which keeps it on the path to the loss.
        Tensor computed = order.Length == 0 ? byExpert : _experts.Compute(byExpert, local);
        Tensor bySource = computed.index_select(0, tensor(inverse, device: grouped.device));
        return Distributed.RowExchange.apply(bySource, recvRows, sendRows, collectives, anchor);
    }
}
