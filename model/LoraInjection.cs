using TorchSharp;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>Attaches fresh LoRA adapters to the projections a <see cref="LoraConfig"/> targets.</summary>
public static class LoraInjection
{
    /// <summary>
    /// A is kaiming-uniform with a = √5 (uniform ±1/√in, as PEFT and nn.Linear), B is zero, so a fresh adapter leaves
    /// the model unchanged. Draws from a generator seeded with <paramref name="seed"/>, in module order.
    /// Returns the names of the adapted projections.
    /// </summary>
    public static IReadOnlyList<string> Attach(DeepSeekV2ForCausalLM model, LoraConfig config, long seed)
    {
        config.Validate();
        var generator = new Generator(unchecked((ulong)seed));
        var adapted = new List<string>();
        foreach ((string name, Projection projection) in Projections(model).Where(p => config.Targets(p.Name)).ToList())
        {
            using var scope = NewDisposeScope();
            double bound = 1.0 / Math.Sqrt(projection.InFeatures);
            Tensor a = rand([config.Rank, projection.InFeatures], ScalarType.Float32, generator: generator) * (2 * bound) - bound;
            Tensor b = zeros([projection.OutFeatures, config.Rank], ScalarType.Float32);
            projection.AttachLora(a, b, config.Scale, config.Dropout);
            adapted.Add(name);
        }
        if (adapted.Count == 0)
            throw new ArgumentException($"lora: no projection of this model matches target_modules {string.Join(", ", config.TargetModules)}");
        return adapted;
    }

    /// <summary>Every projection of the decoder layers with its checkpoint module name.</summary>
    public static IEnumerable<(string Name, Projection Projection)> Projections(DeepSeekV2ForCausalLM model) =>
        model.named_modules().Where(m => m.module is Projection && m.name.StartsWith("model.layers.", StringComparison.Ordinal)
                                          && !m.name.EndsWith(".lora_A", StringComparison.Ordinal) && !m.name.EndsWith(".lora_B", StringComparison.Ordinal))
            .Select(m => (m.name, (Projection)m.module));
}
