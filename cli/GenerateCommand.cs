using System.CommandLine;
using Tune.Formats;
using Tune.Model;
using Tune.Model.Tokenization;

namespace Tune.Cli;

internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = ModelOptions.Model();
        var prompt = new Option<string>("--prompt") { Description = "Plain text to continue (BOS is added, as the tokenizer config says)", HelpName = "TEXT" };
        var chat = new Option<string>("--chat") { Description = "A user message, rendered in the DeepSeek-Coder-V2 chat format", HelpName = "TEXT" };
        var fimPrefix = new Option<string>("--fim-prefix") { Description = "Fill in the middle: the code before the hole (with --fim-suffix)", HelpName = "TEXT" };
        var fimSuffix = new Option<string>("--fim-suffix") { Description = "Fill in the middle: the code after the hole (with --fim-prefix)", HelpName = "TEXT" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most tokens to generate", DefaultValueFactory = _ => 256 };
        var temperature = new Option<double>("--temperature") { Description = "Sampling temperature; 0 = greedy", DefaultValueFactory = _ => 0.0 };
        var topP = new Option<double>("--top-p") { Description = "Nucleus sampling: keep the smallest set of tokens with this much probability", DefaultValueFactory = _ => 1.0 };
        var topK = new Option<int>("--top-k") { Description = "Keep only the K most likely tokens; 0 = all", DefaultValueFactory = _ => 0 };
        var seed = new Option<int>("--seed") { Description = "Seed for sampling", DefaultValueFactory = _ => 0 };
        var adapter = ModelOptions.Adapter();
        var device = ModelOptions.Device();
        var dtype = ModelOptions.DType("auto");

        var command = new Command("generate",
            "Generate text with the latent KV cache; writes only the generated text to standard output, as it comes")
        {
            model, adapter, prompt, chat, fimPrefix, fimSuffix, maxTokens, temperature, topP, topK, seed, device, dtype,
        };
        command.Validators.Add(r =>
        {
            bool fim = r.GetValue(fimPrefix) is not null || r.GetValue(fimSuffix) is not null;
            int modes = (r.GetValue(prompt) is not null ? 1 : 0) + (r.GetValue(chat) is not null ? 1 : 0) + (fim ? 1 : 0);
            if (modes != 1) r.AddError("give exactly one of --prompt, --chat, or --fim-prefix with --fim-suffix");
        });
        maxTokens.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() < 1) r.AddError("--max-tokens must be at least 1");
        });
        command.SetAction((parse, cancel) =>
        {
            TextWriter output = parse.InvocationConfiguration.Output, error = parse.InvocationConfiguration.Error;
            var sampling = new SamplingOptions(parse.GetValue(temperature), parse.GetValue(topP), parse.GetValue(topK), parse.GetValue(seed));
            sampling.Validate();
            TorchRuntime runtime = TorchRuntime.Parse(parse.GetValue(device)!, parse.GetValue(dtype)!);
            string dir = parse.GetValue(model)!;
            DeepSeekTokenizer tokenizer = DeepSeekTokenizer.Load(dir);
            int[] ids = parse.GetValue(chat) is { } message
                ? ChatPrompt.Build(tokenizer, [new ChatMessage(ChatRole.User, message)], addGenerationPrompt: true).Ids
                : parse.GetValue(prompt) is { } text
                    ? [.. tokenizer.AddBos ? [tokenizer.BosId] : Array.Empty<int>(), .. tokenizer.EncodeText(text)]
                    : FimPrompt.Build(tokenizer, parse.GetValue(fimPrefix) ?? "", parse.GetValue(fimSuffix) ?? "").Ids;

            using var checkpoint = CheckpointDirectory.Open(dir);
            using var lm = ModelOptions.Load(checkpoint, runtime, parse.GetValue(adapter));
            error.WriteLine($"{ids.Length} prompt tokens, {runtime}");
            var decoder = new StreamingDecoder(tokenizer, skipSpecial: true);
            int produced = 0;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            foreach (int id in new TextGenerator(lm).Generate(ids, parse.GetValue(maxTokens), sampling, tokenizer.VocabSize, cancel))
            {
                output.Write(decoder.Append(id));
                output.Flush();
                produced++;
            }
            output.Write(decoder.Flush());
            output.Flush();
            error.WriteLine($"\n{produced} tokens in {clock.Elapsed.TotalSeconds:F2} s");
            return Task.FromResult(0);
        });
        return command;
    }
}
