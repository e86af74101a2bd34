using Tune.Formats;
using Tune.Model;
using Tune.Model.Distributed;
using Tune.Trainer.Esft;
using static TorchSharp.torch;

namespace Tune.Trainer.Parallel;

/// <summary>
/// ESFT full mode's trained experts of an expert-parallel run as the one esft_experts.safetensors a single process
/// writes: every rank sends the selected experts it holds to rank 0, one exchange per MoE layer (which keeps each
/// exchange's element count far below MPI's int limit), and rank 0 writes them all in the single-process order.
/// </summary>
public static class GatheredExpertWeights
{
    /// <summary>Called by every rank with the whole selection; only rank 0 writes <paramref name="directory"/>.</summary>
    public static void Save(DeepSeekV2ForCausalLM model, ExpertConfig config, ExpertSharding sharding, string directory)
    {
        using var scope = NewDisposeScope();
        ICollectives collectives = sharding.Collectives;
        int rank = collectives.Rank, ranks = collectives.Size;
        // Every rank knows the shapes and owners from the config, so the counts need no exchange.
        Dictionary<string, long[]> shapes = CheckpointLayout.Tensors(model.Config).ToDictionary(t => t.Name, t => t.Shape);
        Dictionary<string, Tensor> held = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        var weights = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (int layer in config.Experts.Keys.Order())
        {
            var names = EsftExpertWeights.TensorNames(new ExpertConfig(new Dictionary<int, int[]> { [layer] = config.Experts[layer] }))
                .Select(n => (Name: n, Owner: sharding.OwnerOf(EsftExpertWeights.ExpertOf(n)), Elements: shapes[n].Aggregate(1L, (a, b) => a * b)))
                .ToList();
            long[] sendRows = new long[ranks], recvRows = new long[ranks];
            foreach (var n in names.Where(n => n.Owner != 0))
            {
                if (rank == n.Owner) sendRows[0] += n.Elements;
                if (rank == 0) recvRows[n.Owner] += n.Elements;
            }
            var mine = names.Where(n => rank != 0 && n.Owner == rank).Select(n => held[n.Name].detach().to(ScalarType.Float32).flatten()).ToList();
            Tensor send = (mine.Count == 0 ? zeros(0, ScalarType.Float32) : cat(mine, 0).cpu()).contiguous();
            Tensor received = empty(recvRows.Sum(), ScalarType.Float32);
            collectives.AllToAllRows(send, sendRows, received, recvRows);
            if (rank != 0) continue;

            long[] next = new long[ranks];
            for (int p = 1; p < ranks; p++) next[p] = next[p - 1] + recvRows[p - 1];
            foreach ((string name, int owner, long elements) in names)
            {
                if (owner == 0)
                {
                    weights[name] = held[name];
                    continue;
                }
                weights[name] = received.narrow(0, next[owner], elements).view(shapes[name]);
                next[owner] += elements;
            }
        }
        if (rank == 0) EsftExpertWeights.Write(weights, config, directory);
    }
}
