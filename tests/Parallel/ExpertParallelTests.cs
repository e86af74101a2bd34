using System.Diagnostics;
using System.Text.Json.Nodes;
using Tune.Formats;
using Tune.Model;
using Tune.Model.Distributed;
using Tune.Tests.Model;
using Tune.Trainer.Parallel;
using static TorchSharp.torch;

namespace Tune.Tests.Parallel;

/// <summary>
/// The collectives and the expert-parallel MoE layer. The multi-rank cases start `mpirun -np N tune ep-check`, whose
/// ranks each compare their share of the sharded layer with the whole layer run in one process by the existing
/// single-process path; the in-process cases cover the world of one and the checker itself.
/// </summary>
[Collection("torch")]
public sealed class ExpertParallelTests
{
    private const double Tolerance = 1e-5;

    [Fact]
    public void LocalCollectivesPassTheCollectivesCheck() =>
        Assert.Equal(0, ExpertParallelCheck.CheckCollectives(new LocalCollectives(), CPU));

    [Fact]
    public void CollectivesCheckCatchesMisplacedRows() =>
        Assert.True(ExpertParallelCheck.CheckCollectives(new ReversingCollectives(), CPU) > 0);

    [Theory]
    [InlineData("random")]
    [InlineData("skewed")]
    public void OneRankShardedLayerEqualsTheLayer(string routing)
    {
        using var checkpoint = CheckpointDirectory.Open(TestModels.Checkpoint(TestModels.Tiny));
        ExpertParallelCheckResult result = ExpertParallelCheck.Run(new LocalCollectives(), checkpoint, TorchRuntime.Cpu, routing, 6, 1);
        Assert.Equal(0, result.CollectiveMismatches);
        Assert.Equal(0, result.MaxError);
        Assert.Equal(6 * TestModels.Tiny.NumExpertsPerTok, result.ReceivedRows);
        Assert.True(result.ExpertParameters > 0 && result.ReplicatedParameters == 7, $"{result.ExpertParameters} / {result.ReplicatedParameters}");
    }

    [Theory]
    [InlineData(2, "random", "f32")]
    [InlineData(2, "skewed", "f32")]
    [InlineData(4, "random", "f32")]
    [InlineData(4, "skewed", "f32")]
    [InlineData(2, "skewed", "bf16")]
    public void ShardedLayerUnderMpirunEqualsTheSingleProcessLayer(int ranks, string routing, string dtype)
    {
        string report = NewDirectory($"ep-{ranks}-{routing}-{dtype}");
        (int exit, string output, TimeSpan took) = Mpirun($"-np {ranks} dotnet {Tune} ep-check --model {Model} --routing {routing} " +
                                                         $"--dtype {dtype} --tokens 6 --report {report}");
        Assert.True(exit == 0, $"mpirun exited {exit}:\n{output}");
        JsonObject[] results = Enumerable.Range(0, ranks)
            .Select(r => JsonNode.Parse(File.ReadAllText(Path.Combine(report, $"rank-{r}.json")))!.AsObject()).ToArray();
        foreach (JsonObject r in results)
        {
            Assert.Equal(ranks, (int)r["size"]!);
            Assert.StartsWith("Open MPI", (string)r["backend"]!);
            Assert.Equal(0, (int)r["collective_mismatches"]!);
            Assert.True((double)r["max_error"]! <= Tolerance, r.ToJsonString());
            Assert.Equal(7, (int)r["replicated_parameters"]!);
        }
        // Every (token, expert) row of the batch went to exactly one owner, and owners checked their experts' gradients.
        Assert.Equal(ranks * 6 * TestModels.Tiny.NumExpertsPerTok, results.Sum(r => (long)r["received_rows"]!));
        Assert.True(results.Sum(r => (int)r["expert_parameters"]!) > 0);
        if (routing == "skewed") Assert.Contains(results, r => (long)r["received_rows"]! == 0);
        Assert.True(took < TimeSpan.FromSeconds(90), $"took {took}");
    }

    [Fact]
    public void FailingRankEndsTheJobWithItsRankAndCause()
    {
        string missing = Path.Combine(NewDirectory("ep-missing"), "no-model");
        (int exit, string output, TimeSpan took) = Mpirun(
            $"-np 1 dotnet {Tune} ep-check --model {Model} : -np 1 dotnet {Tune} ep-check --model {missing}");
        Assert.NotEqual(0, exit);
        Assert.Contains($"rank 1/2: {missing}: no such checkpoint directory", output);
        // Rank 0 was waiting in its first collective; the abort, not mpirun's --timeout, ended it.
        Assert.True(took < TimeSpan.FromSeconds(60), $"took {took}");
    }

    [Fact]
    public void MissingNcclSaysWhatToInstall()
    {
        var e = Assert.Throws<InvalidOperationException>(() => NcclCollectives.LoadLibrary("/nonexistent/libnccl.so.2"));
        Assert.Contains("/nonexistent/libnccl.so.2 not found: install NCCL", e.Message);
        Assert.Contains("libnccl2", e.Message);
        Assert.Contains(NcclCollectives.LibraryVariable, e.Message);
    }

    [Fact]
    public void ExpertsSplitIntoContiguousBlocksOrNotAtAll()
    {
        var sharding = ExpertSharding.For(new LocalCollectives(), TestModels.Tiny);
        Assert.Equal((0, 8), (sharding.First, sharding.PerRank));
        Assert.True(sharding.Owns(7) && !sharding.Owns(8));
        var three = new ExpertSharding(new ReversingCollectives(), 9);
        Assert.Equal([0, 0, 0, 1, 1, 1, 2, 2, 2], Enumerable.Range(0, 9).Select(three.OwnerOf));
        var e = Assert.Throws<ArgumentException>(() => ExpertSharding.For(new ReversingCollectives(), TestModels.Tiny));
        Assert.Contains("8 routed experts do not split evenly over 3 ranks", e.Message);
    }

    [Fact]
    public void OutsideMpirunTheWorldIsLocal()
    {
        Assert.False(Launch.UnderMpirun);
        using ICollectives collectives = Launch.Collectives(CPU);
        Assert.IsType<LocalCollectives>(collectives);
    }

    private static string Tune => Path.Combine(AppContext.BaseDirectory, "tune.dll");
    private static string Model => TestModels.Checkpoint(TestModels.Tiny);

    private static string NewDirectory(string name)
    {
        string dir = Path.Combine(TestModels.Root, name + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>
    /// Runs mpirun with what CI needs: root allowed, more ranks than cores, one libtorch thread per rank, no terminal
    /// escapes, and a timeout so that a hang fails the test instead of the suite.
    /// </summary>
    private static (int Exit, string Output, TimeSpan Took) Mpirun(string arguments)
    {
        var start = new ProcessStartInfo("mpirun",
            $"--oversubscribe --timeout 120 -x TERM=dumb -x OMP_NUM_THREADS=1 {arguments}")
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
        };
        start.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        start.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        Process process;
        try { process = Process.Start(start)!; }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"mpirun not found ({e.Message}): install Open MPI (apt-get install openmpi-bin)", e);
        }
        using (process)
        {
            var watch = Stopwatch.StartNew();
            Task<string> stdout = process.StandardOutput.ReadToEndAsync(), stderr = process.StandardError.ReadToEndAsync();
            process.WaitForExit();
            return (process.ExitCode, stdout.Result + stderr.Result, watch.Elapsed);
        }
    }

    /// <summary>Three ranks that all believe they are rank 0 and deliver rows in reverse: what a broken backend
    /// looks like to the check.</summary>
    private sealed class ReversingCollectives : ICollectives
    {
        public int Rank => 0;
        public int Size => 3;
        public string Description => "reversing";
        public long[] AllToAll(long[] send) => send.Reverse().ToArray();
        public void AllToAllRows(Tensor send, long[] sendRows, Tensor recv, long[] recvRows)
        {
            long rows = Math.Min(send.shape[0], recv.shape[0]);
            recv.zero_();
            using Tensor reversed = send.flip(0);
            recv.narrow(0, 0, rows).copy_(reversed.narrow(0, 0, rows));
        }
        public void AllReduceSum(Tensor tensor) { }
        public void Broadcast(Tensor tensor, int root) { }
        public void Barrier() { }
        public void Abort(int exitCode) => throw new InvalidOperationException("abort");
        public void Dispose() { }
    }
}
