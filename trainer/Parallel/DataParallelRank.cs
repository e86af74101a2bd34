using TorchSharp;
using TorchSharp.Modules;
using Tune.Model;
using Tune.Model.Distributed;
using static TorchSharp.torch;

namespace Tune.Trainer.Parallel;

/// <summary>
/// What one rank of an expert-parallel run does beside its forward and backward. Every rank is also a data-parallel
/// replica: it holds every parameter except the routed experts of other ranks, so after backward the replicated
/// parameters' gradients are summed over ranks (each rank's loss is its share of the global loss), while a routed
/// expert's gradient is already whole on its owner, having come back through the reverse all-to-all.
/// </summary>
public sealed class DataParallelRank
{
    private readonly ICollectives _collectives;
    private readonly List<(string Name, Parameter Parameter)> _replicated;
    private readonly List<Parameter> _experts;

    public DataParallelRank(ICollectives collectives, IEnumerable<(string Name, Parameter Parameter)> trainable)
    {
        _collectives = collectives;
        var all = trainable.ToList();
        _replicated = all.Where(p => !IsRoutedExpert(p.Name)).ToList();
        _experts = all.Where(p => IsRoutedExpert(p.Name)).Select(p => p.Parameter).ToList();
    }

    public int Rank => _collectives.Rank;
    public int Ranks => _collectives.Size;

    /// <summary>Parameters (LoRA of, or whole) routed experts, which exist on one rank only.</summary>
    public static bool IsRoutedExpert(string parameterName) => parameterName.Contains(".mlp.experts.", StringComparison.Ordinal);

    /// <summary>
    /// Where this rank's rows of a step are, as offsets into the step's rows: micro-batch m of the step is rows
    /// [m·N·b, (m+1)·N·b) of it, as in a single process with batch N·b, and this rank takes those at positions
    /// ≡ rank (mod N). So N ranks with batch b see, micro-batch by micro-batch, the rows one process with batch N·b sees.
    /// </summary>
    public static int[] RowsOfMicroBatch(int rank, int ranks, int batchSize, int micro) =>
        Enumerable.Range(0, batchSize).Select(j => micro * ranks * batchSize + rank + j * ranks).ToArray();

    public void Barrier() => _collectives.Barrier();

    /// <summary>The sum over ranks of a number every rank has.</summary>
    public double Sum(double value)
    {
        using Tensor t = tensor(new[] { value });
        _collectives.AllReduceSum(t);
        return t.item<double>();
    }

    /// <summary>Every rank's <paramref name="value"/>, by rank.</summary>
    public double[] Gather(double value)
    {
        using Tensor t = zeros(Ranks, ScalarType.Float64);
        using (Tensor mine = t[Rank]) mine.fill_(value);
        _collectives.AllReduceSum(t);
        return t.data<double>().ToArray();
    }

    /// <summary>
    /// Sums the replicated parameters' gradients over ranks, in one flat float32 buffer (one collective). A parameter
    /// without a gradient anywhere keeps none, as in a single process, where the optimiser then skips it.
    /// </summary>
    public void SumReplicatedGradients()
    {
        if (_replicated.Count == 0) return;
        using var scope = NewDisposeScope();
        var parts = new List<Tensor>();
        foreach ((_, Parameter p) in _replicated)
            parts.Add(p.grad is { } g ? g.detach().to(ScalarType.Float32).flatten() : zeros(p.numel(), ScalarType.Float32, p.device));
        // One flag per parameter: how many ranks have a gradient for it.
        parts.Add(tensor(_replicated.Select(p => p.Parameter.grad is null ? 0f : 1f).ToArray(), device: _replicated[0].Parameter.device));
        Tensor flat = cat(parts, 0).contiguous();
        _collectives.AllReduceSum(flat);
        float[] flags = flat.narrow(0, flat.shape[0] - _replicated.Count, _replicated.Count).cpu().data<float>().ToArray();
        long offset = 0;
        using var noGrad = no_grad();
        for (int i = 0; i < _replicated.Count; i++)
        {
            (string name, Parameter p) = _replicated[i];
            long n = p.numel();
            if (flags[i] == Ranks) p.grad!.copy_(flat.narrow(0, offset, n).view(p.shape));
            else if (flags[i] > 0)
                throw new InvalidOperationException($"rank {Rank}/{Ranks}: {name} has a gradient on {flags[i]} of {Ranks} ranks; " +
                                                    "a replicated parameter must take part in every rank's forward");
            offset += n;
        }
    }

    /// <summary>
    /// Scales every gradient so that the norm of all of them together is at most <paramref name="maxNorm"/>, as
    /// libtorch's clip_grad_norm_ does for one process: the replicated parameters (equal on every rank after
    /// <see cref="SumReplicatedGradients"/>) count once, each rank's experts count once. Returns the norm before clipping.
    /// </summary>
    public double ClipGlobalNorm(double maxNorm)
    {
        double SquaredNorms(IEnumerable<Parameter> parameters) => parameters.Where(p => p.grad is not null)
            .Sum(p => { double n = p.grad!.norm().item<float>(); return n * n; });
        double total = Math.Sqrt(SquaredNorms(_replicated.Select(p => p.Parameter)) + Sum(SquaredNorms(_experts)));
        double coefficient = maxNorm / (total + 1e-6);
        if (coefficient < 1)
        {
            using var noGrad = no_grad();
            foreach (Parameter p in _replicated.Select(p => p.Parameter).Concat(_experts).Where(p => p.grad is not null)) p.grad!.mul_(coefficient);
        }
        return total;
    }
}
