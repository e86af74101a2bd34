using TorchSharp;
using Tune.Formats;
using Tune.Model;
using Tune.Model.Distributed;
using static TorchSharp.torch;

namespace Tune.Trainer.Parallel;

/// <summary>
/// What one rank found: mismatching values in the collectives check, and the largest differences (relative to the
/// reference's largest value when that is above one) between the expert-parallel MoE layer and the same layer in one process, for the layer's output, the input's gradient, the
/// gradients of this rank's experts' LoRA matrices and of the replicated parameters (router, shared-expert LoRA),
/// the latter summed over ranks. ReceivedRows: (token, expert) rows routed to this rank's experts.
/// </summary>
public sealed record ExpertParallelCheckResult(
    int Rank, int Size, string Backend, string Routing, string DType, int CollectiveMismatches, long ReceivedRows,
    double Loss, double ReferenceLoss, double MaxOutputError, double MaxInputGradientError,
    int ExpertParameters, double MaxExpertGradientError, int ReplicatedParameters, double MaxReplicatedGradientError,
    double? StepMilliseconds = null, double? CommunicationMilliseconds = null)
{
    public double MaxError => new[] { Math.Abs(Loss - ReferenceLoss) / Math.Max(1, Math.Abs(ReferenceLoss)), MaxOutputError, MaxInputGradientError, MaxExpertGradientError, MaxReplicatedGradientError }.Max();
}

/// <summary>
/// `tune ep-check`: checks a job's collectives and its expert-parallel MoE layer. Each rank runs the first MoE layer of
/// a model with its block of experts on its share of a batch, then the whole layer in one process (no collectives,
/// every expert) on the whole batch, and compares. Every rank builds the same batch and the same adapters from the
/// seed, so no data has to travel for the comparison.
/// </summary>
public static class ExpertParallelCheck
{
    /// <summary>"random": inputs drawn at random. "skewed": inputs solved so that the router sends every token to the
    /// first experts, so that the last ranks receive no rows.</summary>
    public static readonly string[] RoutingChoices = ["random", "skewed"];

    public static ExpertParallelCheckResult Run(ICollectives collectives, CheckpointDirectory checkpoint, TorchRuntime runtime,
        string routing, int tokensPerRank, long seed, int repeat = 0)
    {
        if (!RoutingChoices.Contains(routing)) throw new ArgumentException($"--routing {routing}: expected one of {string.Join(", ", RoutingChoices)}");
        if (tokensPerRank <= 0) throw new ArgumentException($"--tokens must be positive, got {tokensPerRank}");
        int mismatches = CheckCollectives(collectives, runtime.Device);
        DeepSeekV2Config config = checkpoint.Config;
        int layer = Enumerable.Range(0, config.NumHiddenLayers).FirstOrDefault(config.IsMoeLayer, -1);
        if (layer < 0) throw new ArgumentException($"{checkpoint.Directory}: the model has no MoE layer to check");
        var timed = new TimedCollectives(collectives);
        var sharding = ExpertSharding.For(timed, config);
        var lora = new LoraConfig { Rank = 4, Alpha = 8, TargetModules = LoraConfig.MlpModules, Dense = false };
        bool Router(string name) => name == $"model.layers.{layer}.mlp.gate.weight";

        using var scope = NewDisposeScope();
        using var sharded = DeepSeekV2ForCausalLM.Load(checkpoint, runtime, Router, sharding);
        using var whole = DeepSeekV2ForCausalLM.Load(checkpoint, runtime, Router);
        foreach (DeepSeekV2ForCausalLM model in new[] { sharded, whole })
        {
            LoraInjection.Attach(model, lora, seed);
            SetAdaptersFromNames(model, seed);
            model.train();
        }

        int ranks = collectives.Size, rank = collectives.Rank;
        long hidden = config.HiddenSize;
        string prefix = $"model.layers.{layer}.mlp.";
        Tensor routerWeight = whole.named_parameters().Single(p => p.name == prefix + "gate.weight").parameter;
        Tensor inputs = Inputs(routing, routerWeight, sharding, config.NumExpertsPerTok, ranks * tokensPerRank, hidden, seed).to(runtime.DType).to(runtime.Device);
        Tensor weights = randn([ranks * tokensPerRank, hidden], generator: new Generator(unchecked((ulong)seed + 1))).to(runtime.Device);

        MoeLayer wholeLayer = whole.Layers[layer].Moe!;
        long received = 0;
        wholeLayer.RoutingObserver = r =>
        {
            using Tensor picks = r.Experts.flatten().cpu();
            received = picks.data<long>().ToArray().Count(e => sharding.Owns((int)e));
        };
        Tensor x = inputs.detach().requires_grad_(true);
        Tensor y = wholeLayer.Forward(x.unsqueeze(0), null).squeeze(0);
        Tensor referenceLoss = (y.to(ScalarType.Float32) * weights).sum();
        referenceLoss.backward();

        Tensor mine = inputs.narrow(0, rank * tokensPerRank, tokensPerRank).detach().requires_grad_(true);
        Tensor myOutput = sharded.Layers[layer].Moe!.Forward(mine.unsqueeze(0), null).squeeze(0);
        Tensor loss = (myOutput.to(ScalarType.Float32) * weights.narrow(0, rank * tokensPerRank, tokensPerRank)).sum();
        loss.backward();
        Tensor globalLoss = loss.detach().to(ScalarType.Float32).reshape(1).contiguous();
        collectives.AllReduceSum(globalLoss);

        var reference = whole.named_parameters().Where(p => p.name.StartsWith(prefix, StringComparison.Ordinal) && p.parameter.grad is not null)
            .ToDictionary(p => p.name, p => p.parameter.grad!);
        int expertParameters = 0, replicatedParameters = 0;
        double expertError = 0, replicatedError = 0;
        foreach ((string name, var parameter) in sharded.named_parameters().Where(p => p.parameter.requires_grad && p.name.StartsWith(prefix, StringComparison.Ordinal)))
        {
            Tensor? gradient = parameter.grad;
            bool isExpert = name.Contains(".mlp.experts.", StringComparison.Ordinal);
            if (!isExpert)
            {
                // Every rank holds the replicated parameters and must join the all-reduce, with or without a gradient.
                gradient = gradient?.contiguous().clone() ?? zeros_like(parameter);
                collectives.AllReduceSum(gradient);
            }
            bool hasReference = reference.TryGetValue(name, out Tensor? expected);
            if (!hasReference && gradient is null) continue;
            double error = !hasReference || gradient is null
                ? double.PositiveInfinity // a gradient on one side only: the routing differs
                : MaxAbsDifference(gradient, expected!);
            if (isExpert) { expertParameters++; expertError = Math.Max(expertError, error); }
            else { replicatedParameters++; replicatedError = Math.Max(replicatedError, error); }
        }
        // An expert gradient that only the single process has would go unseen above: count the experts it trained here.
        int expectedExpertParameters = reference.Keys.Count(n => n.Contains(".mlp.experts.", StringComparison.Ordinal) && HeldHere(n, sharding));
        if (expectedExpertParameters != expertParameters) expertError = double.PositiveInfinity;

        (double? stepMs, double? communicationMs) = repeat > 0 ? Time(sharded.Layers[layer].Moe!, mine, timed, repeat) : ((double?, double?))(null, null);
        return new ExpertParallelCheckResult(rank, ranks, collectives.Description, routing, runtime.DType.ToString(), mismatches, received,
            globalLoss.item<float>(), referenceLoss.item<float>(),
            MaxAbsDifference(myOutput, y.narrow(0, rank * tokensPerRank, tokensPerRank)),
            MaxAbsDifference(mine.grad!, x.grad!.narrow(0, rank * tokensPerRank, tokensPerRank)),
            expertParameters, expertError, replicatedParameters, replicatedError, stepMs, communicationMs);
    }

    /// <summary>
    /// Median wall time of the sharded layer's forward and backward over <paramref name="repeat"/> runs (after one
    /// warm-up), and the median time spent inside collectives in those runs (waiting for a slower rank included).
    /// </summary>
    private static (double StepMs, double CommunicationMs) Time(MoeLayer layer, Tensor input, TimedCollectives timed, int repeat)
    {
        var steps = new List<double>();
        var communication = new List<double>();
        for (int i = 0; i <= repeat; i++)
        {
            using var scope = NewDisposeScope();
            timed.Barrier();
            TimeSpan before = timed.Elapsed;
            long started = System.Diagnostics.Stopwatch.GetTimestamp();
            Tensor x = input.detach().requires_grad_(true);
            layer.Forward(x.unsqueeze(0), null).to(ScalarType.Float32).sum().backward();
            if (i == 0) continue;
            steps.Add(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            communication.Add((timed.Elapsed - before).TotalMilliseconds);
        }
        return (Median(steps), Median(communication));
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

    /// <summary>
    /// Exchanges values whose expected result every rank can compute: uneven row counts with a zero, float32 and bf16
    /// rows, int64 and float32 all-reduce, broadcast from the last rank. Returns how many received values were wrong.
    /// </summary>
    public static int CheckCollectives(ICollectives collectives, Device device)
    {
        using var scope = NewDisposeScope();
        int n = collectives.Size, r = collectives.Rank, wrong = 0;
        long Rows(int from, int to) => (from + 2 * to) % 3; // some pairs exchange nothing
        long[] sendRows = Enumerable.Range(0, n).Select(p => Rows(r, p)).ToArray();
        long[] recvRows = collectives.AllToAll(sendRows);
        wrong += Enumerable.Range(0, n).Count(p => recvRows[p] != Rows(p, r));

        // Row j from rank a to rank b holds a·1000 + b·100 + j + i/8 in column i: exact in float32, and in bf16 once taken mod 32 (8 significant bits).
        Tensor Block(int from, int to, long rows) =>
            (arange(rows, ScalarType.Float32).unsqueeze(1) + (from * 1000 + to * 100) + arange(3, ScalarType.Float32).unsqueeze(0) / 8);
        foreach (ScalarType dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
        {
            Tensor send = cat(Enumerable.Range(0, n).Select(p => Block(r, p, Rows(r, p))).ToList(), 0);
            Tensor expected = cat(Enumerable.Range(0, n).Select(p => Block(p, r, Rows(p, r))).ToList(), 0);
            if (dtype == ScalarType.BFloat16) { send = send.remainder(32); expected = expected.remainder(32); }
            Tensor recv = full([recvRows.Sum(), 3], -1f, dtype, device);
            collectives.AllToAllRows(send.to(dtype).to(device).contiguous(), sendRows, recv, recvRows);
            wrong += (int)recv.cpu().to(ScalarType.Float32).ne(expected).sum().item<long>();
        }

        Tensor counts = tensor(new long[] { r, 1 }, device: device);
        collectives.AllReduceSum(counts);
        long[] summed = counts.cpu().data<long>().ToArray();
        wrong += (summed[0] != (long)n * (n - 1) / 2 ? 1 : 0) + (summed[1] != n ? 1 : 0);
        Tensor halves = full([5], 0.5f * (r + 1), ScalarType.Float32, device);
        collectives.AllReduceSum(halves);
        wrong += (int)halves.cpu().ne(0.25f * n * (n + 1)).sum().item<long>();

        Tensor broadcast = full([4], (float)r, ScalarType.Float32, device);
        collectives.Broadcast(broadcast, n - 1);
        wrong += (int)broadcast.cpu().ne((float)(n - 1)).sum().item<long>();
        collectives.Barrier();
        return wrong;
    }

    /// <summary>
    /// LoRA A and B from a generator seeded by the seed and the module's name, so that a rank holding some experts and a
    /// process holding all of them get the same adapters (fresh adapters are drawn in module order, and B is zero,
    /// which would leave A without a gradient).
    /// </summary>
    private static void SetAdaptersFromNames(DeepSeekV2ForCausalLM model, long seed)
    {
        using var noGrad = no_grad();
        foreach ((string name, Projection projection) in LoraInjection.Projections(model).Where(p => p.Projection.HasLora))
        {
            ulong hash = name.Aggregate(14695981039346656037UL, (h, c) => (h ^ c) * 1099511628211UL); // FNV-1a
            var generator = new Generator(hash ^ unchecked((ulong)seed));
            projection.LoraA!.copy_(randn(projection.LoraA.shape, generator: generator) * 0.3);
            projection.LoraB!.copy_(randn(projection.LoraB.shape, generator: generator) * 0.3);
        }
    }

    /// <summary>
    /// [tokens, hidden] inputs. Skewed ones are the least-norm solution of x·Wᵀ = target, with router logits 1 for the first
    /// max(top-k, E/N) experts (rank 0's, and as few more ranks as top-k needs) and -1 for the others, plus noise too small to change the top-k; that needs hidden ≥ experts.
    /// </summary>
    private static Tensor Inputs(string routing, Tensor routerWeight, ExpertSharding sharding, int topK, long tokens, long hidden, long seed)
    {
        var generator = new Generator(unchecked((ulong)seed + 2));
        Tensor noise = randn([tokens, hidden], generator: generator);
        if (routing == "random") return noise;
        Tensor w = routerWeight.detach().to(ScalarType.Float32).cpu();
        if (w.shape[1] < w.shape[0]) throw new ArgumentException($"skewed routing needs hidden_size ≥ n_routed_experts ({w.shape[1]} < {w.shape[0]})");
        Tensor target = full([sharding.Experts], -1f).index_fill_(0, arange(Math.Max(topK, sharding.PerRank)), 1f);
        Tensor x0 = linalg.pinv(w).matmul(target);
        return x0.unsqueeze(0) + 0.01 * noise;
    }

    private static bool HeldHere(string name, ExpertSharding sharding)
    {
        string[] parts = name.Split('.');
        int at = Array.IndexOf(parts, "experts");
        return at >= 0 && at + 1 < parts.Length && int.TryParse(parts[at + 1], out int expert) && sharding.Owns(expert);
    }

    /// <summary>max |a − b| over max(1, max |b|): absolute for values of order one, relative for large ones (skewed
    /// inputs are large, and float32 rounding grows with them).</summary>
    private static double MaxAbsDifference(Tensor a, Tensor b)
    {
        if (a.numel() == 0) return 0;
        using Tensor expected = b.detach().cpu().to(ScalarType.Float64);
        using Tensor difference = (a.detach().cpu().to(ScalarType.Float64) - expected).abs();
        return difference.max().item<double>() / Math.Max(1, expected.abs().max().item<double>());
    }
}
