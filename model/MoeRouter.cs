using TorchSharp;
using TorchSharp.Modules;
using Tune.Formats;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>The router's choice for N tokens: expert ids and weights [N, k], and the full softmax scores [N, E].</summary>
public sealed record Routing(Tensor Experts, Tensor Weights, Tensor Scores);

/// <summary>
/// DeepSeek-V2's MoEGate (spec §2.5): softmax over x·W_gateᵀ in float32, then greedy or group-limited top-k, then
/// either normalised weights (norm_topk_prob, no scaling) or weights times routed_scaling_factor. The gate weight is a
/// bare parameter in the checkpoint (`mlp.gate.weight`), not a Linear.
/// </summary>
public sealed class MoeRouter : ExplicitModule
{
    private readonly DeepSeekV2Config _config;

    public Parameter Weight { get; private set; }

    public MoeRouter(CheckpointWeights w, string prefix, DeepSeekV2Config config) : base(prefix)
    {
        _config = config;
        Tensor weight = w.Load(prefix + ".weight", config.NRoutedExperts!.Value, config.HiddenSize);
        Weight = new Parameter(weight, requires_grad: weight.requires_grad);
        register_parameter("weight", Weight);
    }

    /// <summary>
    /// Swaps in a trained gate weight (an adapter's modules_to_save), kept in float32 like the trained one: the loaded
    /// weight may be a read-only view of the checkpoint's mapping, so it is replaced, never written.
    /// </summary>
    public void ReplaceWeight(Tensor weight)
    {
        if (!weight.shape.SequenceEqual(Weight.shape))
            throw new ArgumentException($"{GetName()}: a router weight of [{string.Join(", ", weight.shape)}] does not fit [{string.Join(", ", Weight.shape)}]");
        var replacement = new Parameter(weight.to(ScalarType.Float32, Weight.device, copy: true).DetachFromDisposeScope(), requires_grad: false);
        ConditionallyRegisterParameter("weight", replacement);
        Weight = replacement;
    }

    /// <summary>Routes x [N, D].</summary>
    public Routing Route(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor logits = nn.functional.linear(x.to(ScalarType.Float32), Weight.to(ScalarType.Float32));
        Tensor scores = logits.softmax(-1);
        (Tensor experts, Tensor weights) = Select(scores, _config);
        return new Routing(experts.MoveToOuterDisposeScope(), weights.MoveToOuterDisposeScope(), scores.MoveToOuterDisposeScope());
    }

    /// <summary>Top-k selection and weighting on given scores [N, E], by the config's topk_method.</summary>
    public static (Tensor Experts, Tensor Weights) Select(Tensor scores, DeepSeekV2Config config)
    {
        using var scope = NewDisposeScope();
        int k = config.NumExpertsPerTok;
        Tensor candidates = scores;
        if (config.TopkMethod == "group_limited_greedy")
        {
            long n = scores.shape[0], e = scores.shape[1], groups = config.NGroup!.Value;
            Tensor groupScores = scores.view(n, groups, e / groups).max(-1).values;
            Tensor keptGroups = groupScores.topk(config.TopkGroup!.Value, dim: -1, sorted: false).indexes;
            Tensor groupMask = zeros_like(groupScores, dtype: ScalarType.Bool)
                .scatter_(1, keptGroups, ones_like(keptGroups, dtype: ScalarType.Bool));
            Tensor expertMask = groupMask.unsqueeze(-1).expand(n, groups, e / groups).reshape(n, e);
            // Softmax scores are positive, so zero removes the other groups' experts from the top-k.
            candidates = scores.masked_fill(expertMask.logical_not(), 0.0);
        }
        (Tensor weights, Tensor experts) = candidates.topk(k, dim: -1, sorted: false);
        weights = k > 1 && config.NormTopkProb
            ? weights / (weights.sum(-1, keepdim: true) + 1e-20)
            : weights * config.RoutedScalingFactor;
        return (experts.MoveToOuterDisposeScope(), weights.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The expert-level balance loss of spec §2.6 for one layer, before its coefficient (HF multiplies by
    /// aux_loss_alpha; the trainer applies its own): with seq_aux, Σₑ fₑ·Pₑ per sequence of the batch [B, T],
    /// averaged over sequences; otherwise over all tokens at once.
    /// </summary>
    public static Tensor BalanceLoss(Routing routing, long batch, long tokens, bool seqAux)
    {
        using var scope = NewDisposeScope();
        long e = routing.Scores.shape[1], k = routing.Experts.shape[1];
        Tensor loss;
        if (seqAux)
        {
            Tensor picks = routing.Experts.view(batch, tokens * k);
            Tensor counts = zeros([batch, e], ScalarType.Float32, routing.Scores.device)
                .scatter_add_(1, picks, ones([batch, tokens * k], ScalarType.Float32, routing.Scores.device));
            Tensor f = counts / (tokens * k / (double)e);
            Tensor p = routing.Scores.view(batch, tokens, e).mean([1]);
            loss = (f * p).sum(1).mean();
        }
        else
        {
            Tensor f = nn.functional.one_hot(routing.Experts.flatten(), e).to(ScalarType.Float32).mean([0]) * e;
            Tensor p = routing.Scores.mean([0]);
            loss = (p * f).sum();
        }
        return loss.MoveToOuterDisposeScope();
    }
}
