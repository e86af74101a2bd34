using System.CommandLine;
using Tune.Convert;
using Tune.Formats;

namespace Tune.Cli;

internal static class ConvertCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model")
        {
            Description = "Hugging Face model directory (config.json, *.safetensors, tokenizer.json); with --adapter, the base the adapter was " +
                          "trained on (default: the adapter's base_model_name_or_path)",
            HelpName = "DIR",
        };
        var adapter = new Option<string>("--adapter")
        {
            Description = "Write this PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors) as a GGUF LoRA adapter instead, for " +
                          "llama.cpp's --lora over the base converted with `tune convert --model`. llama.cpp applies LoRA to o_proj, the dense " +
                          "MLP, shared and routed experts and routers only; an adapter on q_proj, q_a/q_b_proj, kv_a_proj_with_mqa or kv_b_proj " +
                          "is refused (merge it with `tune merge` and convert the merged model). Default type f32",
            HelpName = "DIR",
        };
        var output = new Option<string>("--out") { Description = "GGUF file to write (written under a temporary name, renamed when complete)", Required = true, HelpName = "FILE.gguf" };
        var type = new Option<string>("--type")
        {
            Description = "Type of the weight matrices (norms and routers stay f32); default: the checkpoint's own type, which loses nothing " +
                          "(with --adapter: the LoRA matrices, default f32)",
            HelpName = "f32|f16|bf16|q8_0",
        }.AcceptOnlyFromAmong("f32", "f16", "bf16", "q8_0");
        var name = new Option<string>("--name") { Description = "general.name (default: the model directory's name)", HelpName = "NAME" };
        var layout = new Option<string>("--layout")
        {
            Description = "split: attn_k_b + attn_v_b, as llama.cpp's converter writes since April 2025; legacy: one attn_kv_b, for older runtimes",
            DefaultValueFactory = _ => "split",
        }.AcceptOnlyFromAmong("split", "legacy");

        var command = new Command("convert", "Convert a Hugging Face DeepSeek-V2 checkpoint, or a PEFT LoRA adapter (--adapter), to GGUF " +
                                             "(llama.cpp's deepseek2 architecture)")
        {
            model, adapter, output, type, name, layout,
        };
        command.Validators.Add(result =>
        {
            if (result.GetValue(adapter) is null && result.GetValue(model) is null) result.AddError("--model is required (or --adapter DIR to convert an adapter)");
        });
        command.SetAction((parse, cancel) =>
        {
            TextWriter err = parse.InvocationConfiguration.Error;
            GgmlType? chosen = parse.GetValue(type) is { } t ? OutputTypes.Parse(t) : null;
            if (parse.GetValue(adapter) is { } adapterDirectory)
            {
                var adapterOptions = new AdapterConvertOptions(adapterDirectory, parse.GetValue(output)!)
                {
                    ModelDirectory = parse.GetValue(model),
                    Type = chosen ?? GgmlType.F32,
                    Name = parse.GetValue(name),
                };
                using var lora = AdapterToGgufConversion.Prepare(adapterOptions);
                foreach (string note in lora.Notes) err.WriteLine($"note: {note}");
                lora.Write(cancel);
                parse.InvocationConfiguration.Output.WriteLine(
                    $"wrote {adapterOptions.OutputPath}: GGUF LoRA adapter, {lora.Tensors.Count()} tensors, adapter.lora.alpha {lora.Alpha:G6}, {lora.ByteCount:N0} bytes");
                return Task.FromResult(0);
            }
            var options = new ConvertOptions(parse.GetValue(model)!, parse.GetValue(output)!)
            {
                Type = chosen,
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
