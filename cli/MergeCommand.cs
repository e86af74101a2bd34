using System.CommandLine;
using Tune.Trainer;

namespace Tune.Cli;

internal static class MergeCommand
{
    public static Command Create()
    {
        var model = ModelOptions.Model();
        var adapter = new Option<string>("--adapter") { Description = "The PEFT LoRA adapter directory to merge, or an ESFT output directory (esft_experts.safetensors)", Required = true, HelpName = "DIR" };
        var output = new Option<string>("--out") { Description = "Directory for the merged checkpoint (same dtype and shard count as the base)", Required = true, HelpName = "DIR" };
        var command = new Command("merge", "Fold a LoRA adapter into its base: W + scale·B·A, streamed tensor by tensor into a full Hugging Face checkpoint")
        {
            model, adapter, output,
        };
        command.SetAction(parse =>
        {
            var progress = new ProgressLine(parse.InvocationConfiguration.Error, "tensors");
            IReadOnlyList<string> files = AdapterMerge.Write(parse.GetValue(model)!, parse.GetValue(adapter)!, parse.GetValue(output)!, progress.Report);
            progress.Done();
            parse.InvocationConfiguration.Output.WriteLine($"wrote {parse.GetValue(output)}: {files.Count} file(s)");
            return 0;
        });
        return command;
    }
}
