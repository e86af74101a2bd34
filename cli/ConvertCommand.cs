using System.CommandLine;
using Tune.Convert;
using Tune.Formats;

namespace Tune.Cli;

internal static class ConvertCommand
{
    public static Command Create()
    {
        var model = ModelOptions.Model();
        var output = new Option<string>("--out") { Description = "GGUF file to write (written under a temporary name, renamed when complete)", Required = true, HelpName = "FILE.gguf" };
        var type = new Option<string>("--type")
        {
            Description = "Type of the weight matrices (norms and routers stay f32); default: the checkpoint's own type, which loses nothing",
            HelpName = "f32|f16|bf16|q8_0",
        }.AcceptOnlyFromAmong("f32", "f16", "bf16", "q8_0");
        var name = new Option<string>("--name") { Description = "general.name (default: the model directory's name)", HelpName = "NAME" };
        var layout = new Option<string>("--layout")
        {
            Description = "split: attn_k_b + attn_v_b, as llama.cpp's converter writes since April 2025; legacy: one attn_kv_b, for older runtimes",
            DefaultValueFactory = _ => "split",
        }.AcceptOnlyFromAmong("split", "legacy");

        var command = new Command("convert", "Convert a Hugging Face DeepSeek-V2 checkpoint to GGUF (llama.cpp's deepseek2 architecture)")
        {
            model, output, type, name, layout,
        };
        command.SetAction((parse, cancel) =>
        {
            TextWriter err = parse.InvocationConfiguration.Error;
            var options = new ConvertOptions(parse.GetValue(model)!, parse.GetValue(output)!)
            {
                Type = parse.GetValue(type) is { } t ? OutputTypes.Parse(t) : null,
                Name = parse.GetValue(name),
                Layout = parse.GetValue(layout) == "legacy" ? KvLayout.Legacy : KvLayout.Split,
            };
            using var conversion = HfToGgufConversion.Prepare(options);
            foreach (string note in conversion.Notes) err.WriteLine($"note: {note}");
            foreach (string warning in conversion.Warnings) err.WriteLine($"warning: {warning}");
            var progress = new ConvertProgressLine(err);
            conversion.Write(progress.Report, cancel);
            progress.Done();
            parse.InvocationConfiguration.Output.WriteLine(
                $"wrote {options.OutputPath}: {conversion.Tensors.Count} tensors, {conversion.Metadata.Count} metadata keys, " +
                $"{conversion.ByteCount:N0} bytes of {conversion.Type.Name()} weights ({options.Layout.ToString().ToLowerInvariant()} layout)");
            return Task.FromResult(0);
        });
        return command;
    }
}
