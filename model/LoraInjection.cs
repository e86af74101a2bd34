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
        foreach ((string name, long inFeatures, _, Projection? projection) in InSingleProcessOrder(model).Where(p => config.Targets(p.Name)).ToList())
        {
            using var scope = NewDisposeScope();
            double bound = 1.0 / Math.Sqrt(inFeatures);
            Tensor a = rand([config.Rank, inFeatures], ScalarType.Float32, generator: generator) * (2 * bound) - bound;
            if (projection is null) continue;
            Tensor b = zeros([projection.OutFeatures, config.Rank], ScalarType.Float32);
            projection.AttachLora(a, b, config.Scale, config.Dropout);
            adapted.Add(name);
        }
        if (adapted.Count == 0)
            throw new ArgumentException($"lora: no projection of this model matches target_modules {string.Join(", ", config.TargetModules)}");
        return adapted;
    }

    /// <summary>
    /// The projections in the order of a model that holds every expert. With expert parallelism a rank holds only its
    /// block of each layer's routed experts; the others appear here without a projection (held by another rank), so
    /// that this rank draws the same random numbers for its adapters as a single process would, skips the draws of the
    /// experts it lacks, and can gather a whole adapter in the order a single process writes it.
    /// </summary>
    public static IEnumerable<(string Name, long InFeatures, long OutFeatures, Projection? Projection)> InSingleProcessOrder(DeepSeekV2ForCausalLM model)
    {
        string[] parts = ["gate_proj", "up_proj", "down_proj"];
        long hidden = model.Config.HiddenSize, intermediate = model.Config.MoeIntermediateSize;
        IEnumerable<(string, long, long, Projection?)> Missing(string experts, int first, int end) =>
            from e in Enumerable.Range(first, end - first)
            from part in parts
            select ($"{experts}.{e}.{part}", part == "down_proj" ? intermediate : hidden, part == "down_proj" ? hidden : intermediate, (Projection?)null);

        foreach ((string name, Projection projection) in Projections(model))
        {
            string[] path = name.Split('.'); // model.layers.L.mlp.experts.E.part
            RoutedExperts? experts = path.Length == 7 && path[3] == "mlp" && path[4] == "experts" ? model.Layers[int.Parse(path[2])].Moe?.Experts : null;
            if (experts?.Sharding is null)
            {
                yield return (name, projection.InFeatures, projection.OutFeatures, projection);
                continue;
            }
            string prefix = string.Join('.', path[..5]);
            int expert = int.Parse(path[5]);
            if (expert == experts.First && path[6] == parts[0])
                foreach (var missing in Missing(prefix, 0, experts.First)) yield return missing;
            yield return (name, projection.InFeatures, projection.OutFeatures, projection);
            if (expert == experts.First + experts.Held - 1 && path[6] == parts[^1])
                foreach (var missing in Missing(prefix, experts.First + experts.Held, experts.Count)) yield return missing;
        }
    }

    /// <summary>Every projection of the decoder layers with its checkpoint module name.</summary>
    public static IEnumerable<(string Name, Projection Projection)> Projections(DeepSeekV2ForCausalLM model) =>
        model.named_modules().Where(m => m.module is Projection && m.name.StartsWith("model.layers.", StringComparison.Ordinal)
                                          && !m.name.EndsWith(".lora_A", StringComparison.Ordinal) && !m.name.EndsWith(".lora_B", StringComparison.Ordinal))
            .Select(m => (m.name, (Projection)m.module));
}
