using TorchSharp;
using Tune.Bench;
using Tune.Formats;
using Tune.Model;

// Benchmarks of the model graph; results go to docs/benchmarks.md by hand.
//   dotnet run -c Release --project bench -- infer [--model DIR | --gguf FILE] [--dtype f32|bf16] [--prefill 256] [--decode 32] [--threads N] [--repeat 1]
//   dotnet run -c Release --project bench -- train [--model DIR] [--dtype f32|bf16] [--seq 512] [--steps 3] [--checkpointing] [--threads N]
//   dotnet run -c Release --project bench -- serve [--model DIR | --gguf FILE] [--streams 1,4,16] [--tokens 32] [--ctx 512] [--threads N]
// --gguf loads FILE as the server does (GgufModel.Load, quantised weights multiplied with --threads threads);
// --repeat R times R rounds after the warm-up and reports the best, with every round listed.
// serve runs S concurrent greedy streams through the server's engine (S slots) for each S of --streams.
// Without --model, the Lite-shaped model (cli/configs/lite-shaped.json, bf16) is written to the temp directory once.
if (args.Length == 0 || args[0] is not ("infer" or "train" or "serve"))
{
    Console.Error.WriteLine("usage: Tune.Bench infer|train|serve [options]  (see bench/Program.cs)");
    return 2;
}
var options = new Dictionary<string, string>();
for (int i = 1; i < args.Length; i++)
{
    if (args[i] == "--checkpointing") options["checkpointing"] = "true";
    else if (i + 1 < args.Length && args[i].StartsWith("--", StringComparison.Ordinal)) options[args[i][2..]] = args[++i];
    else throw new ArgumentException($"cannot read option {args[i]}");
}
string Option(string name, string fallback) => options.TryGetValue(name, out string? v) ? v : fallback;

int threads = int.Parse(Option("threads", Environment.ProcessorCount.ToString()));
torch.set_num_threads(threads);
var runtime = TorchRuntime.Parse("cpu", Option("dtype", "f32"));
int repeat = int.Parse(Option("repeat", "1"));
if (args[0] == "infer" && options.TryGetValue("gguf", out string? gguf))
{
    // As ServedModel serves a GGUF file: the kernels take --threads, libtorch's ops in between one thread.
    torch.set_num_threads(1);
    Console.WriteLine(InferenceBenchmark.RunGguf(gguf, runtime, threads, int.Parse(Option("prefill", "256")), int.Parse(Option("decode", "32")), repeat));
    return 0;
}
if (args[0] == "serve")
{
    string served = options.TryGetValue("gguf", out string? file) ? file : options.TryGetValue("model", out string? dir) ? dir : LiteShaped();
    int[] streams = Option("streams", "1,4,16").Split(',').Select(int.Parse).ToArray();
    Console.WriteLine(ServeThroughputBenchmark.Run(served, runtime, threads, streams, int.Parse(Option("tokens", "32")), int.Parse(Option("ctx", "512"))));
    return 0;
}
string model = options.TryGetValue("model", out string? given) ? given : LiteShaped();
Console.WriteLine(args[0] == "infer"
    ? InferenceBenchmark.Run(model, runtime, int.Parse(Option("prefill", "256")), int.Parse(Option("decode", "32")), repeat)
    : TrainingStepBenchmark.Run(model, runtime, int.Parse(Option("seq", "512")), int.Parse(Option("steps", "3")), options.ContainsKey("checkpointing")));
return 0;

static string LiteShaped()
{
    string dir = Path.Combine(Path.GetTempPath(), "tune-bench-lite-shaped");
    if (File.Exists(Path.Combine(dir, "config.json"))) return dir;
    string repo = Directory.GetCurrentDirectory();
    while (!File.Exists(Path.Combine(repo, "Tune.sln")))
        repo = Path.GetDirectoryName(repo) ?? throw new DirectoryNotFoundException("run the benchmark inside the repository, or pass --model");
    Console.Error.WriteLine($"writing the Lite-shaped model to {dir} …");
    var config = DeepSeekV2Config.Load(Path.Combine(repo, "cli", "configs", "lite-shaped.json"));
    RandomCheckpoint.Write(config, dir, DType.BF16, 1, Path.Combine(repo, "tokenizers", "deepseek-v2"), 1);
    return dir;
}
