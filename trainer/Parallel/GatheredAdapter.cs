using Tune.Model;
using Tune.Model.Distributed;
using static TorchSharp.torch;

namespace Tune.Trainer.Parallel;

/// <summary>
/// The PEFT adapter of an expert-parallel run as one file, the one a single process writes: every rank sends its
/// routed experts' LoRA matrices to rank 0 (one exchange), and rank 0 writes them with the replicated adapters in the
/// single-process module order, under the same names.
/// </summary>
public static class GatheredAdapter
{
    /// <summary>Called by every rank; only rank 0 writes <paramref name="directory"/>.</summary>
    public static void Save(DeepSeekV2ForCausalLM model, LoraConfig config, ExpertSharding sharding, string directory, string baseModel)
    {
        using var scope = NewDisposeScope();
        ICollectives collectives = sharding.Collectives;
        int rank = collectives.Rank, ranks = collectives.Size;
        var order = LoraInjection.InSingleProcessOrder(model).ToList();
        var adapted = order.Where(p => config.Targets(p.Name)).ToList();

        // Every rank knows which adapted experts each rank holds and their shapes, so the counts need no exchange.
        int OwnerOf(string name) => DataParallelRank.IsRoutedExpert(name) ? sharding.OwnerOf(int.Parse(name.Split('.')[5])) : 0;
        long Elements(long inFeatures, long outFeatures) => config.Rank * (inFeatures + outFeatures);
        long[] held = new long[ranks];
        foreach (var p in adapted) held[OwnerOf(p.Name)] += Elements(p.InFeatures, p.OutFeatures);

        var mine = adapted.Where(p => rank != 0 && OwnerOf(p.Name) == rank)
            .SelectMany(p => new[] { p.Projection!.LoraA!.detach().to(ScalarType.Float32).flatten(), p.Projection.LoraB!.detach().to(ScalarType.Float32).flatten() })
            .ToList();
        Tensor send = (mine.Count == 0 ? zeros(0, ScalarType.Float32) : cat(mine, 0).cpu()).contiguous();
        long[] sendRows = new long[ranks], recvRows = new long[ranks];
        if (rank != 0) sendRows[0] = held[rank];
        else for (int p = 1; p < ranks; p++) recvRows[p] = held[p];
        Tensor received = empty(recvRows.Sum(), ScalarType.Float32);
        collectives.AllToAllRows(send, sendRows, received, recvRows);
        if (rank != 0) return;

        long[] next = new long[ranks];
        for (int p = 1; p < ranks; p++) next[p] = next[p - 1] + recvRows[p - 1];
        var matrices = new List<(string Name, Tensor A, Tensor B)>();
        foreach ((string name, long inFeatures, long outFeatures, Projection? projection) in adapted)
        {
            int owner = OwnerOf(name);
            if (owner == 0)
            {
                matrices.Add((name, projection!.LoraA!, projection.LoraB!));
                continue;
            }
            Tensor a = received.narrow(0, next[owner], config.Rank * inFeatures).view(config.Rank, inFeatures);
            Tensor b = received.narrow(0, next[owner] + config.Rank * inFeatures, outFeatures * config.Rank).view(outFeatures, config.Rank);
            next[owner] += Elements(inFeatures, outFeatures);
            matrices.Add((name, a, b));
        }
        var routers = PeftAdapter.Routers(model).Where(r => r.Router.Weight.requires_grad).Select(r => (r.Name, (Tensor)r.Router.Weight)).ToList();
        bool everyMatch = order.All(p => config.Targets(p.Name) == config.TargetModules.Contains(p.Name.Split('.')[^1]));
        PeftAdapter.Save(matrices, routers, everyMatch, config, directory, baseModel);
    }
}
