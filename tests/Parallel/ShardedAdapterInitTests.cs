using Tune.Formats;
using Tune.Model;
using Tune.Model.Distributed;
using Tune.Tests.Model;
using static TorchSharp.torch;

namespace Tune.Tests.Parallel;

/// <summary>
/// A rank that holds only its block of experts must start from the adapters a single process would draw, or the
/// sharded run could never equal the single-process one.
/// </summary>
[Collection("torch")]
public sealed class ShardedAdapterInitTests
{
    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void EachRankDrawsTheSingleProcessAdaptersOfItsExperts(int ranks)
    {
        using var checkpoint = CheckpointDirectory.Open(TestModels.Checkpoint(TestModels.Tiny));
        // Routed experts in the middle of the order: attention and shared-expert adapters of later layers come after them.
        var lora = new LoraConfig { Rank = 2, TargetModules = [.. LoraConfig.MlpModules, "q_proj", "o_proj"] };
        using var whole = DeepSeekV2ForCausalLM.Load(checkpoint, TorchRuntime.Cpu);
        LoraInjection.Attach(whole, lora, seed: 5);
        Dictionary<string, Tensor> expected = LoraInjection.Projections(whole).Where(p => p.Projection.HasLora)
            .ToDictionary(p => p.Name, p => p.Projection.LoraA!.detach());

        var seen = new HashSet<string>();
        for (int rank = 0; rank < ranks; rank++)
        {
            var sharding = ExpertSharding.For(new RankOnly(rank, ranks), TestModels.Tiny);
            using var sharded = DeepSeekV2ForCausalLM.Load(checkpoint, TorchRuntime.Cpu, sharding: sharding);
            IReadOnlyList<string> adapted = LoraInjection.Attach(sharded, lora, seed: 5);
            Assert.Equal(expected.Keys.Count(n => !n.Contains(".experts.", StringComparison.Ordinal) || HeldBy(n, sharding)), adapted.Count);
            foreach ((string name, Projection projection) in LoraInjection.Projections(sharded).Where(p => p.Projection.HasLora))
            {
                Assert.True(expected[name].eq(projection.LoraA!.detach()).all().item<bool>(), $"rank {rank}/{ranks}: {name} differs");
                seen.Add(name);
            }
        }
        Assert.Equal(expected.Keys.Order(), seen.Order());
    }

    private static bool HeldBy(string name, ExpertSharding sharding) => sharding.Owns(int.Parse(name.Split('.')[5]));

    /// <summary>Where a rank sits, for building its shard; loading makes no collective call.</summary>
    private sealed class RankOnly(int rank, int size) : ICollectives
    {
        public int Rank => rank;
        public int Size => size;
        public string Description => $"rank {rank} of {size}, no communication";
        public long[] AllToAll(long[] send) => throw new InvalidOperationException("no communication here");
        public void AllToAllRows(Tensor send, long[] sendRows, Tensor recv, long[] recvRows) => throw new InvalidOperationException("no communication here");
        public void AllReduceSum(Tensor tensor) => throw new InvalidOperationException("no communication here");
        public void Broadcast(Tensor tensor, int root) => throw new InvalidOperationException("no communication here");
        public void Barrier() => throw new InvalidOperationException("no communication here");
        public void Abort(int exitCode) => throw new InvalidOperationException("no communication here");
        public void Dispose() { }
    }
}
