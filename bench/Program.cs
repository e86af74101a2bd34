using System.Diagnostics;
using TorchSharp;
using Tune.Formats;
using Tune.Model;
using static TorchSharp.torch;

// Prefill and decode throughput and peak memory of the model graph on a checkpoint (default: the Lite-shaped model,
// written on first use). Results go to docs/benchmarks.md by hand.
//   dotnet run -c Release --project bench -- [--model DIR] [--dtype f32|bf16] [--prefill 256] [--decode 32] [--threads N]
string? model = null;
string dtype = "f32";
int prefill = 256, decode = 32, threads = Environment.ProcessorCount;
for (int i = 0; i < args.Length; i += 2)
{
    string value = i + 1 < args.Length ? args[i + 1] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--model": model = value; break;
        case "--dtype": dtype = value; break;
        case "--prefill": prefill = int.Parse(value); break;
        case "--decode": decode = int.Parse(value); break;
        case "--threads": threads = int.Parse(value); break;
        default: throw new ArgumentException($"unknown option {args[i]}");
    }
}

if (model is null)
{
    string repo = Directory.GetCurrentDirectory();
    while (!File.Exists(Path.Combine(repo, "Tune.sln")))
        repo = Path.GetDirectoryName(repo) ?? throw new DirectoryNotFoundException("run the benchmark inside the repository, or pass --model");
    model = Path.Combine(Path.GetTempPath(), "tune-bench-lite-shaped");
    if (!File.Exists(Path.Combine(model, "config.json")))
    {
        Console.Error.WriteLine($"writing the Lite-shaped model to {model} …");
        var config = DeepSeekV2Config.Load(Path.Combine(repo, "cli", "configs", "lite-shaped.json"));
        RandomCheckpoint.Write(config, model, DType.BF16, 1, Path.Combine(repo, "tokenizers", "deepseek-v2"), 1);
    }
}

torch.set_num_threads(threads);
var runtime = TorchRuntime.Parse("cpu", dtype);
using var checkpoint = CheckpointDirectory.Open(model);
var clock = Stopwatch.StartNew();
using var lm = DeepSeekV2ForCausalLM.Load(checkpoint, runtime);
double loadSeconds = clock.Elapsed.TotalSeconds;

var random = new Random(1);
long[] prompt = Enumerable.Range(0, prefill).Select(_ => (long)random.Next(100000)).ToArray();
using var noGrad = no_grad();
double Prefill(LatentCache cache)
{
    using var scope = NewDisposeScope();
    var watch = Stopwatch.StartNew();
    lm.Forward(tensor(prompt).unsqueeze(0), cache);
    return watch.Elapsed.TotalSeconds;
}
double Decode(LatentCache cache)
{
    var watch = Stopwatch.StartNew();
    for (int i = 0; i < decode; i++)
    {
        using var scope = NewDisposeScope();
        lm.Forward(tensor(new[] { (long)random.Next(100000) }).unsqueeze(0), cache);
    }
    return watch.Elapsed.TotalSeconds;
}

using (var warm = new LatentCache(checkpoint.Config, 1, prefill + decode, runtime)) { Prefill(warm); Decode(warm); }
using var cache = new LatentCache(checkpoint.Config, 1, prefill + decode, runtime);
double prefillSeconds = Prefill(cache);
double decodeSeconds = Decode(cache);
long peakKb = File.ReadLines("/proc/self/status").Where(l => l.StartsWith("VmHWM:")).Select(l => long.Parse(l.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[1])).First();

Console.WriteLine($"| {TorchRuntime.Name(runtime.DType)} | {threads} | {prefill} | {prefill / prefillSeconds:F1} | {decode / decodeSeconds:F2} | {peakKb / 1024.0 / 1024.0:F2} GiB | {loadSeconds:F1} s |");
