using TorchSharp;
using Tune.Formats;
using Tune.Model;
using Tune.Model.Tokenization;
using Tune.Tests.Model;
using static TorchSharp.torch;

namespace Tune.Tests.Serve;

/// <summary>The tiny model with the real vocabulary (FIM and chat tokens), a random PEFT adapter for it, and cold runs.</summary>
public static class ServeModels
{
    private static readonly Lazy<string> AdapterDirectory = new(() => WriteAdapter(trainRouters: false));
    private static readonly Lazy<string> RouterAdapterDirectory = new(() => WriteAdapter(trainRouters: true));

    public static string Checkpoint => TestModels.Checkpoint(TestModels.Tiny with { VocabSize = 102400 });

    /// <summary>Attention and expert LoRA with a non-zero B, so the adapter changes what the model says.</summary>
    public static string Adapter => AdapterDirectory.Value;

    /// <summary>An adapter that also carries whole routers (PEFT modules_to_save), which replace the model's own.</summary>
    public static string RouterAdapter => RouterAdapterDirectory.Value;

    public static DeepSeekTokenizer Tokenizer { get; } = DeepSeekTokenizer.Load(Checkpoint);

    /// <summary>Greedy ids from the plain <see cref="TextGenerator"/>, with a fresh cache: what a server must reproduce.</summary>
    public static string ColdRun(int[] prompt, int maxTokens, string? adapter = null)
    {
        using var checkpoint = CheckpointDirectory.Open(Checkpoint);
        using var model = DeepSeekV2ForCausalLM.Load(checkpoint, TorchRuntime.Cpu);
        if (adapter is not null) PeftAdapter.Apply(model, adapter);
        int[] ids = new TextGenerator(model).Generate(prompt, maxTokens, new SamplingOptions(), Tokenizer.VocabSize).ToArray();
        return Tokenizer.Decode(ids, skipSpecial: true);
    }

    private static string WriteAdapter(bool trainRouters)
    {
        string dir = Path.Combine(TestModels.Root, $"serve-adapter-{Guid.NewGuid():N}");
        using var checkpoint = CheckpointDirectory.Open(Checkpoint);
        using var model = DeepSeekV2ForCausalLM.Load(checkpoint, TorchRuntime.Cpu,
            trainRouters ? name => name.EndsWith(".mlp.gate.weight", StringComparison.Ordinal) : null);
        var config = new LoraConfig { Rank = 4, Alpha = 8, TargetModules = ["q_proj", "kv_b_proj", "o_proj", "up_proj"] };
        LoraInjection.Attach(model, config, seed: trainRouters ? 13 : 11);
        var generator = new Generator(trainRouters ? 14UL : 12UL);
        using (no_grad())
        {
            foreach ((_, Projection p) in LoraInjection.Projections(model).Where(p => p.Projection.HasLora))
                p.LoraB!.copy_(randn(p.LoraB.shape, generator: generator) * 0.5);
            if (trainRouters)
                foreach ((_, MoeRouter router) in PeftAdapter.Routers(model))
                    router.Weight.add_(randn(router.Weight.shape, generator: generator) * 2.0);
        }
        PeftAdapter.Save(model, config, dir, Checkpoint);
        return dir;
    }
}
