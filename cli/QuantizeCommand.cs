using System.CommandLine;
using Tune.Convert;
using Tune.Formats;
using Tune.Quantize;

namespace Tune.Cli;

internal static class QuantizeCommand
{
    public static Command Create()
    {
        var input = new Option<string>("--input")
        {
            Description = "f32, f16 or bf16 GGUF file to quantise, or a Hugging Face checkpoint directory to convert and quantise in one pass " +
                          "(no intermediate file; the same bytes as tune convert --type f32 then tune quantize)",
            Required = true,
            HelpName = "FILE.gguf|DIR",
        };
        var output = new Option<string>("--out") { Description = "GGUF file to write (written under a temporary name, renamed when complete)", Required = true, HelpName = "FILE.gguf" };
        var type = new Option<string>("--type")
        {
            Description = "llama.cpp mixture: q4_k_m and q4_k_s choose a type per tensor exactly as llama-quantize does",
            Required = true,
            HelpName = string.Join("|", QuantizationMix.All.Select(m => m.Name)),
        }.AcceptOnlyFromAmong([.. QuantizationMix.All.Select(m => m.Name)]);
        var threads = new Option<int>("--threads") { Description = "Threads quantising rows", DefaultValueFactory = _ => Environment.ProcessorCount, HelpName = "N" };
        var report = new Option<string>("--report") { Description = "Write the per-tensor report (type, bits per weight, relative RMS error) as JSON", HelpName = "FILE.json" };

        var command = new Command("quantize", "Quantise a GGUF file or a Hugging Face checkpoint to q8_0, q4_0, q4_k_s or q4_k_m, as llama.cpp's llama-quantize does")
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
            var progress = new ConvertProgressLine(err);
            IReadOnlyList<TensorChoice> tensors;
            QuantizeReport result;
            if (Directory.Exists(options.InputPath))
            {
                using var quantization = CheckpointQuantization.Prepare(options);
                foreach (string note in quantization.Notes) err.WriteLine($"note: {note}");
                foreach (string warning in quantization.Warnings) err.WriteLine($"warning: {warning}");
                (tensors, result) = (quantization.Tensors, quantization.Write(progress.Report, cancel));
            }
            else
            {
                using var quantization = GgufQuantization.Prepare(options);
                (tensors, result) = (quantization.Tensors, quantization.Write(
                    p => progress.Report(new ConvertProgress(p.TensorsDone, p.TensorCount, p.BytesDone, p.ByteCount)), cancel));
            }
            progress.Done();
            if (parse.GetValue(report) is { } reportPath) AtomicFile.Write(reportPath, s => s.Write(System.Text.Encoding.UTF8.GetBytes(result.ToJson())));
            int quantised = tensors.Count(t => !t.IsCopied);
            string types = string.Join(", ", tensors.GroupBy(t => t.Type).OrderByDescending(g => g.Count()).Select(g => $"{g.Count()} {g.Key.Name()}"));
            parse.InvocationConfiguration.Output.WriteLine(
                $"wrote {options.OutputPath}: {result.FileSize:N0} bytes, {result.BitsPerWeight:F2} bits per weight, {quantised} of {tensors.Count} tensors quantised ({types}) in {result.Seconds:F1} s");
            return Task.FromResult(0);
        });
        return command;
    }
}
