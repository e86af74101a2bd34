using System.CommandLine;
using System.Runtime.InteropServices;
using TorchSharp;
using Tune.Formats;
using Tune.Model;
using static TorchSharp.torch;

namespace Tune.Cli;

internal static class ForwardCommand
{
    public static Command Create()
    {
        var model = ModelOptions.Model();
        var ids = new Option<string>("--ids") { Description = "Comma-separated token ids, used exactly (no BOS is added)", Required = true, HelpName = "1,2,3" };
        var output = new Option<string>("--out") { Description = "File for the logits: raw little-endian float32, row-major [n_ids, vocab_size]", Required = true, HelpName = "FILE" };
        var adapter = ModelOptions.Adapter();
        var device = ModelOptions.Device();
        var dtype = ModelOptions.DType("f32");
        var command = new Command("forward", "Run one forward pass over the given token ids and write the logits of every position")
        {
            model, ids, output, adapter, device, dtype,
        };
        command.SetAction(parse =>
        {
            long[] tokens = ParseIds(parse.GetValue(ids)!);
            TorchRuntime runtime = TorchRuntime.Parse(parse.GetValue(device)!, parse.GetValue(dtype)!);
            using var checkpoint = CheckpointDirectory.Open(parse.GetValue(model)!);
            int vocab = checkpoint.Config.VocabSize;
            long outside = tokens.FirstOrDefault(t => t >= vocab, -1);
            if (outside >= 0) throw new ArgumentException($"--ids: {outside} is not below vocab_size {vocab}");
            using var lm = ModelOptions.Load(checkpoint, runtime, parse.GetValue(adapter));
            float[] logits;
            using (no_grad())
            using (NewDisposeScope())
                logits = lm.Forward(tensor(tokens, dtype: ScalarType.Int64).unsqueeze(0))[0].cpu().data<float>().ToArray();
            AtomicFile.Write(parse.GetValue(output)!, s => s.Write(MemoryMarshal.AsBytes(logits.AsSpan())));
            parse.InvocationConfiguration.Output.WriteLine($"[{tokens.Length}, {vocab}]");
            return 0;
        });
        return command;
    }

    public static long[] ParseIds(string text)
    {
        string[] parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new ArgumentException("--ids: no token ids given");
        return parts.Select(p => long.TryParse(p, out long id) && id >= 0
            ? id
            : throw new ArgumentException($"--ids: \"{p}\" is not a non-negative integer")).ToArray();
    }
}
