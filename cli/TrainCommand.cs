using System.CommandLine;
using System.Diagnostics;
using Tune.Model;
using Tune.Model.Distributed;
using Tune.Trainer;
using Tune.Trainer.Recipes;

namespace Tune.Cli;

internal static class TrainCommand
{
    public static Command Create()
    {
        var recipe = new Argument<string>("recipe") { Description = "A training recipe (see recipes/README.md)", HelpName = "RECIPE.yaml" };
        var set = new Option<string[]>("--set")
        {
            Description = "Override a recipe key, e.g. --set train.max_steps=200 --set lora.rank=32 (repeatable)",
            HelpName = "KEY=VALUE",
            AllowMultipleArgumentsPerToken = false,
        };
        var resume = new Option<bool>("--resume") { Description = "Continue from the newest checkpoint in the output directory" };
        var nproc = new Option<int>("--nproc")
        {
            Description = "Expert-parallel training on this node: start `mpirun -np N` of this command (one rank per GPU; " +
                          "train.batch_size is then per rank). For several nodes, run mpirun yourself with a hostfile",
            HelpName = "N",
            DefaultValueFactory = _ => 1,
        };
        var command = new Command("train", "Fine-tune with LoRA as a recipe says; writes a PEFT adapter, checkpoints and metrics.jsonl")
        {
            recipe, set, resume, nproc,
        };
        command.SetAction(async (parse, cancel) =>
        {
            string recipePath = parse.GetValue(recipe)!;
            string[] settings = parse.GetValue(set) ?? [];
            int ranks = parse.GetValue(nproc);
            if (ranks < 1) throw new ArgumentException($"--nproc must be 1 or more, got {ranks}");
            if (ranks > 1)
            {
                if (Launch.UnderMpirun) throw new ArgumentException("--nproc starts mpirun itself; under mpirun, leave it out");
                RecipeLoader.Load(recipePath, settings); // a bad recipe is reported once, not by every rank
                return await StartRanks(ranks, recipePath, settings, parse.GetValue(resume), cancel);
            }

            Launch.SelectGpuForRank();
            Recipe loaded = RecipeLoader.Load(recipePath, settings);
            TorchRuntime runtime = TorchRuntime.Parse(loaded.Model.Device, loaded.Model.Dtype);
            using ICollectives collectives = Launch.Collectives(runtime.Device);
            try
            {
                TrainingResult result = await TrainingJob.RunAsync(loaded, parse.GetValue(resume), parse.InvocationConfiguration.Error, cancel, collectives);
                if (collectives.Rank == 0)
                    parse.InvocationConfiguration.Output.WriteLine(
                        $"loss {result.LossBefore:F4} -> {result.LossAfter:F4}; adapter: {result.AdapterDirectory}");
                return 0;
            }
            // A cancelled rank (mpirun ending the job) has nothing to report; it only has to exit.
            catch (Exception e) when (collectives.Size > 1 && e is not OperationCanceledException)
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

    /// <summary>
    /// Runs `mpirun -np N` of this very program (the apphost, or dotnet with the entry assembly) with the same training
    /// arguments, the ranks' output going straight to this process's; returns mpirun's exit code.
    /// </summary>
    private static async Task<int> StartRanks(int ranks, string recipe, string[] settings, bool resume, CancellationToken cancel)
    {
        string host = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell which program is running, to start its ranks");
        var start = new ProcessStartInfo("mpirun");
        // Root may start ranks only when it says so; TERM=dumb keeps .NET from writing terminal escapes into the ranks' output.
        string[] launcher = ["-np", ranks.ToString(System.Globalization.CultureInfo.InvariantCulture), "-x", "TERM=dumb"];
        if (Environment.UserName == "root") launcher = ["--allow-run-as-root", .. launcher];
        foreach (string a in launcher) start.ArgumentList.Add(a);
        start.ArgumentList.Add(host);
        if (Path.GetFileNameWithoutExtension(host) == "dotnet")
            start.ArgumentList.Add(System.Reflection.Assembly.GetEntryAssembly()?.Location
                                   ?? throw new InvalidOperationException("cannot tell which assembly dotnet runs, to start its ranks"));
        start.ArgumentList.Add("train");
        start.ArgumentList.Add(recipe);
        foreach (string s in settings)
        {
            start.ArgumentList.Add("--set");
            start.ArgumentList.Add(s);
        }
        if (resume) start.ArgumentList.Add("--resume");
        Process process;
        try { process = Process.Start(start)!; }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"--nproc {ranks}: mpirun not found ({e.Message}); install Open MPI " +
                                                "(Debian/Ubuntu: apt-get install openmpi-bin)", e);
        }
        using (process)
        {
            try { await process.WaitForExitAsync(cancel); }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw;
            }
            return process.ExitCode;
        }
    }
}
