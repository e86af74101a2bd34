using System.CommandLine;
using Tune.Formats;
using Tune.Model;

namespace Tune.Cli;

internal static class NewCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config")
        {
            Description = "config.json to instantiate, or a built-in: tiny (for tests) or lite-shaped (Coder-V2-Lite's layer sizes, 3 layers)",
            Required = true,
            HelpName = "FILE.json|tiny|lite-shaped",
        };
        var output = new Option<string>("--out") { Description = "Directory to write the checkpoint to", Required = true, HelpName = "DIR" };
        var seed = new Option<long>("--seed") { Description = "Seed of the weight generator (same seed, same bytes)", DefaultValueFactory = _ => 0 };
        var dtype = new Option<string>("--dtype") { Description = "Stored weight type", DefaultValueFactory = _ => "bf16" }
            .AcceptOnlyFromAmong("bf16", "f16", "f32");
        var tokenizer = new Option<string>("--tokenizer")
        {
            Description = "Directory with tokenizer.json and tokenizer_config.json (default: the DeepSeek-V2 tokenizer shipped with Tune)",
            HelpName = "DIR",
        };
        var shards = new Option<int>("--shards") { Description = "Number of safetensors shards (1 = model.safetensors, no index)", DefaultValueFactory = _ => 1 };

        var command = new Command("new", "Write a randomly initialised DeepSeek-V2 checkpoint in the exact Hugging Face layout")
        {
            config, output, seed, dtype, tokenizer, shards,
        };
        command.SetAction(parse =>
        {
            TextWriter err = parse.InvocationConfiguration.Error;
            DeepSeekV2Config model = BuiltIn.LoadConfig(parse.GetValue(config)!);
            string dir = parse.GetValue(output)!;
            DType stored = parse.GetValue(dtype) switch { "f32" => DType.F32, "f16" => DType.F16, _ => DType.BF16 };
            var progress = new ProgressLine(err, "tensors");
            IReadOnlyList<string> files = RandomCheckpoint.Write(model, dir, stored, parse.GetValue(seed),
                parse.GetValue(tokenizer) ?? BuiltIn.TokenizerDirectory, parse.GetValue(shards), progress.Report);
            progress.Done();
            long parameters = CheckpointLayout.ParameterCount(model);
            parse.InvocationConfiguration.Output.WriteLine(
                $"wrote {dir}: {parameters:N0} parameters ({stored}) in {files.Count} shard(s)");
            return 0;
        });
        return command;
    }
}
