using System.CommandLine;
using Tune.Serve;

namespace Tune.Cli;

internal static class ServeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model")
        {
            Description = "Hugging Face model directory, or a .gguf file", Required = true, HelpName = "DIR|FILE.gguf",
        };
        var adapters = new Option<string[]>("--adapter")
        {
            Description = "A PEFT LoRA adapter served unmerged under NAME (requests choose it by `model`); repeatable",
            HelpName = "NAME=DIR",
            AllowMultipleArgumentsPerToken = false,
        };
        var host = new Option<string>("--host") { Description = "Address to listen on", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "Port to listen on (0: any free port)", DefaultValueFactory = _ => 8080 };
        var ctx = new Option<int?>("--ctx") { Description = $"Context per slot in tokens, prompt + generated (default: the model's, at most {ServeOptions.DefaultContextCap})", HelpName = "N" };
        var parallel = new Option<int>("--parallel") { Description = "Slots: requests generated at the same time", DefaultValueFactory = _ => 1 };
        var queue = new Option<int>("--queue")
        {
            Description = "Requests that may wait for a free slot; one more is answered 429", HelpName = "N",
            DefaultValueFactory = _ => ServeOptions.DefaultMaxQueued,
        };
        var apiKey = new Option<string>("--api-key") { Description = "Require `Authorization: Bearer KEY` on every endpoint but /health", HelpName = "KEY" };
        var threads = new Option<int?>("--threads") { Description = "CPU threads for libtorch and the GGUF kernels (default: libtorch's choice; every core for GGUF)", HelpName = "N" };
        var device = ModelOptions.Device();
        var dtype = ModelOptions.DType("auto");

        var command = new Command("serve",
            "Serve the model over HTTP: OpenAI chat and completions (FIM with `suffix`), /beta/completions, llama.cpp /infill and /completion, " +
            "Ollama /api/generate, /v1/models, /health, /metrics")
        {
            model, adapters, host, port, ctx, parallel, queue, apiKey, threads, device, dtype,
        };
        command.SetAction(async (parse, cancel) =>
        {
            var named = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (string spec in parse.GetValue(adapters) ?? [])
            {
                int eq = spec.IndexOf('=');
                if (eq <= 0 || eq == spec.Length - 1) throw new ArgumentException($"--adapter {spec}: expected NAME=DIR");
                if (!named.TryAdd(spec[..eq], spec[(eq + 1)..])) throw new ArgumentException($"--adapter {spec}: the name {spec[..eq]} is given twice");
            }
            var options = new ServeOptions
            {
                ModelPath = parse.GetValue(model)!,
                Adapters = named,
                Host = parse.GetValue(host)!,
                Port = parse.GetValue(port),
                Context = parse.GetValue(ctx),
                Parallel = parse.GetValue(parallel),
                MaxQueued = parse.GetValue(queue),
                ApiKey = parse.GetValue(apiKey),
                Threads = parse.GetValue(threads),
                Device = parse.GetValue(device)!,
                DType = parse.GetValue(dtype)!,
            };
            TextWriter error = parse.InvocationConfiguration.Error;
            await using TuneServer server = await TuneServer.StartAsync(options, cancel);
            error.WriteLine($"serving {server.Context.Model.Id} on {server.Address} ({options.Parallel} slot(s) of {server.Context.Engine.Context} tokens); Ctrl+C stops");
            try
            {
                await Task.Delay(Timeout.Infinite, cancel);
            }
            catch (OperationCanceledException)
            {
                error.WriteLine("stopping");
            }
            return 0;
        });
        return command;
    }
}
