namespace Tune.Trainer.Recipes;

/// <summary>The base model: a Hugging Face checkpoint directory, and where and in what precision it runs.</summary>
public sealed record ModelRecipe
{
    public static readonly string[] DTypes = ["auto", "f32", "bf16", "f16"];

    /// <summary>Checkpoint directory (config.json, *.safetensors, tokenizer.json); relative to the working directory.</summary>
    public string Path { get; init; } = "";

    /// <summary>auto (bf16 on a GPU, f32 on the CPU), f32, bf16 or f16.</summary>
    public string Dtype { get; init; } = "auto";

    /// <summary>auto (the first GPU if CUDA is available, else the CPU), cpu, cuda or cuda:N.</summary>
    public string Device { get; init; } = "auto";
}
