using System.CommandLine;
using Tune.Formats;
using Tune.Model;

namespace Tune.Cli;

/// <summary>Options shared by every verb that runs a model.</summary>
internal static class ModelOptions
{
    public static Option<string> Model() => new("--model")
    {
        Description = "Hugging Face model directory (config.json, *.safetensors, tokenizer.json)",
        Required = true,
        HelpName = "DIR",
    };

    public static Option<string> Adapter() => new("--adapter")
    {
        Description = "A PEFT LoRA adapter directory (adapter_config.json, adapter_model.safetensors), applied unmerged",
        HelpName = "DIR",
    };

    /// <summary>Loads the model, with the adapter when one is given.</summary>
    public static DeepSeekV2ForCausalLM Load(CheckpointDirectory checkpoint, TorchRuntime runtime, string? adapter)
    {
        var model = DeepSeekV2ForCausalLM.Load(checkpoint, runtime);
        if (adapter is not null) PeftAdapter.Apply(model, adapter);
        return model;
    }

    public static Option<string> Device()
    {
        var option = new Option<string>("--device")
        {
            Description = "Where to run: auto (first GPU if CUDA is available, else CPU), cpu, cuda or cuda:N",
            DefaultValueFactory = _ => "auto",
        };
        option.Validators.Add(r =>
        {
            string v = r.GetValueOrDefault<string>() ?? "";
            if (v is not ("auto" or "cpu" or "cuda") && !v.StartsWith("cuda:", StringComparison.Ordinal))
                r.AddError($"--device {v}: expected auto, cpu, cuda or cuda:N");
        });
        return option;
    }

    public static Option<string> DType(string fallback) => new Option<string>("--dtype")
    {
        Description = "Compute precision: f32, bf16 or f16 (auto: bf16 on a GPU, f32 on the CPU, where bf16 decoding is slower)",
        DefaultValueFactory = _ => fallback,
    }.AcceptOnlyFromAmong("auto", "f32", "bf16", "f16");

}
