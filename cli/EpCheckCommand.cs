using System.CommandLine;
using System.Text.Json;
using Tune.Formats;
using Tune.Model;
using Tune.Model.Distributed;
using Tune.Trainer.Parallel;

namespace Tune.Cli;

/// <summary>
/// `mpirun -np N tune ep-check --model DIR`: checks that this machine's (or these nodes') Open MPI or NCCL exchanges
/// tensors correctly and that the expert-parallel MoE layer computes what one process computes. One JSON line per
/// rank on stdout; exit 1 when anything is off.
/// </summary>
internal static class EpCheckCommand
{
    public const double Tolerance = 1e-5;

    public static Command Create()
    {
        var model = ModelOptions.Model();
        var routing = new Option<string>("--routing")
        {
            Description = "random, or skewed: every token goes to the first experts, so the last ranks receive nothing",
            DefaultValueFactory = _ => "random",
        };
        routing.AcceptOnlyFromAmong(ExpertParallelCheck.RoutingChoices);
        var tokens = new Option<int>("--tokens") { Description = "Tokens per rank", DefaultValueFactory = _ => 6 };
        var seed = new Option<long>("--seed") { Description = "Seed of the batch and the adapters", DefaultValueFactory = _ => 1 };
        var tolerance = new Option<double>("--tolerance") { Description = "Largest difference accepted (bf16 needs more)", DefaultValueFactory = _ => Tolerance };
        var repeat = new Option<int>("--repeat") { Description = "Also time the sharded layer's forward and backward this many times (median step and communication time)", DefaultValueFactory = _ => 0 };
        var report = new Option<string?>("--report") { Description = "Also write each rank's line to DIR/rank-N.json (mpirun interleaves the ranks' stdout)", HelpName = "DIR" };
        var device = ModelOptions.Device();
        var dtype = ModelOptions.DType("f32");
        var command = new Command("ep-check", "Check the collectives and the expert-parallel MoE layer of a job started by mpirun against one process")
        {
            model, routing, tokens, seed, tolerance, repeat, report, device, dtype,
        };
        command.SetAction(parse =>
        {
            Launch.SelectGpuForRank();
            TorchRuntime runtime = TorchRuntime.Parse(parse.GetValue(device)!, parse.GetValue(dtype)!);
            using ICollectives collectives = Launch.Collectives(runtime.Device);
            try
            {
                using var checkpoint = CheckpointDirectory.Open(parse.GetValue(model)!);
                ExpertParallelCheckResult result = ExpertParallelCheck.Run(collectives, checkpoint, runtime,
                    parse.GetValue(routing)!, parse.GetValue(tokens), parse.GetValue(seed), parse.GetValue(repeat));
                bool ok = result.CollectiveMismatches == 0 && result.MaxError <= parse.GetValue(tolerance);
                string line = JsonSerializer.Serialize(result, Json);
                if (parse.GetValue(report) is { } directory)
                {
                    Directory.CreateDirectory(directory);
                    AtomicFile.Write(Path.Combine(directory, $"rank-{result.Rank}.json"), s => s.Write(System.Text.Encoding.UTF8.GetBytes(line + "\n")));
                }
                parse.InvocationConfiguration.Output.WriteLine(line);
                parse.InvocationConfiguration.Output.Flush();
                return ok ? 0 : 1;
            }
            catch (Exception e) when (collectives.Size > 1)
            {
                // The other ranks are waiting in a collective; only ending the whole job releases them.
                parse.InvocationConfiguration.Error.WriteLine($"error: rank {collectives.Rank}/{collectives.Size}: {e.Message}");
                parse.InvocationConfiguration.Error.Flush();
                collectives.Abort(2);
                throw;
            }
        });
        return command;
    }

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}
