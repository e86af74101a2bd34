using System.CommandLine;
using Tune.Convert;
using Tune.Formats;
using Tune.Quantize;

namespace Tune.Cli;

internal static class QuantizeCommand
{
    public static Command Create()
    {
        var input = new Option<string>("--input") { Description = "f32, f16 or bf16 GGUF file to quantise", Required = true, HelpName = "FILE.gguf" };
        var output = new Option<string>("--out") { Description = "GGUF file to write (written under a temporary name, renamed when complete)", Required = true, HelpName = "FILE.gguf" };
        var type = new Option<string>("--type")
        {
            Description = "llama.cpp mixture: q4_k_m and q4_k_s choose a type per tensor exactly as llama-quantize does",
            Required = true,
            HelpName = string.Join("|", QuantizationMix.All.Select(m => m.Name)),
        }.AcceptOnlyFromAmong([.. QuantizationMix.All.Select(m => m.Name)]);
        var threads = new Option<int>("--threads") { Description = "Threads quantising rows", DefaultValueFactory = _ => Environment.ProcessorCount, HelpName = "N" };
        var report = new Option<string>("--report") { Description = "Write the per-tensor report (type, bits per weight, relative RMS error) as JSON", HelpName = "FILE.json" };

        var command = new Command("quantize", "Quantise a GGUF file to q8_0, q4_0, q4_k_s or q4_k_m, as llama.cpp's llama-quantize does")
        {
            input, output, type, threads, report,
        };
        command.SetAction((parse, cancel) =>
        {
            TextWriter err = parse.InvocationConfiguration.Error;
            var options = new QuantizeOptions(parse.GetValue(input)!, parse.GetValue(output)!, QuantizationMix.Parse(parse.GetValue(type)!))
            {
                Threads = parse.GetValue(threads),
            };
            using var quantization = GgufQuantization.Prepare(options);
            var progress = new ConvertProgressLine(err);
            QuantizeReport result = quantization.Write(p => progress.Report(new ConvertProgress(p.TensorsDone, p.TensorCount, p.BytesDone, p.ByteCount)), cancel);
            progress.Done();
            if (parse.GetValue(report) is { } reportPath) AtomicFile.Write(reportPath, s => s.Write(System.Text.Encoding.UTF8.GetBytes(result.ToJson())));
            int quantised = quantization.Tensors.Count(t => !t.IsCopied);
            string types = string.Join(", ", quantization.Tensors.GroupBy(t => t.Type).OrderByDescending(g => g.Count()).Select(g => $"{g.Count()} {g.Key.Name()}"));
            parse.InvocationConfiguration.Output.WriteLine(
                $"wrote {options.OutputPath}: {result.FileSize:N0} bytes, {result.BitsPerWeight:F2} bits per weight, {quantised} of {quantization.Tensors.Count} tensors quantised ({types}) in {result.Seconds:F1} s");
            return Task.FromResult(0);
        });
        return command;
    }
}
