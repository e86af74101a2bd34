using System.Text.RegularExpressions;
using Tune.Formats;

namespace Tune.Convert;

/// <summary>
/// Before anything is written: the checkpoint must hold exactly the tensors its config.json implies, with those
/// shapes and a float dtype. Errors name the shard file and the tensor.
/// </summary>
public static class CheckpointCheck
{
    // What llama.cpp's converter drops without a word: rotary caches and multi-token-prediction layers past the model.
    private static readonly Regex Ignored = new(@"(\.rotary_emb\.inv_freq|\.attention\.masked_bias|\.attention\.bias)$", RegexOptions.CultureInvariant);
    private static readonly Regex LayerIndex = new(@"^model\.layers\.(\d+)\.", RegexOptions.CultureInvariant);

    /// <summary>Throws <see cref="InvalidDataException"/> at the first problem, listing how many others there are.</summary>
    public static void Validate(CheckpointDirectory checkpoint)
    {
        DeepSeekV2Config c = checkpoint.Config;
        var expected = CheckpointLayout.Tensors(c).ToDictionary(t => t.Name, StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (TensorInfo t in checkpoint.Tensors)
        {
            string file = checkpoint.Locate(t.Name).File.Path;
            if (!expected.TryGetValue(t.Name, out TensorSpec? spec))
            {
                if (!IsIgnored(t.Name, c.NumHiddenLayers))
                    problems.Add($"{file}: tensor \"{t.Name}\" is not part of a DeepSeek-V2 checkpoint with this config.json");
                continue;
            }
            if (!t.Shape.AsSpan().SequenceEqual(spec.Shape))
                problems.Add($"{file}: tensor \"{t.Name}\" has shape {Format(t.Shape)}, but config.json implies {Format(spec.Shape)}");
            else if (t.DType is not (DType.F32 or DType.F16 or DType.BF16))
                problems.Add($"{file}: tensor \"{t.Name}\" is {t.DType}; only F32, F16 and BF16 weights can be converted");
        }
        foreach (TensorSpec spec in expected.Values)
            if (!checkpoint.Contains(spec.Name))
                problems.Add($"{checkpoint.Directory}: tensor \"{spec.Name}\" {Format(spec.Shape)} is missing from the checkpoint");
        if (problems.Count == 0) return;
        string more = problems.Count > 1 ? $" (and {problems.Count - 1} more problem(s))" : "";
        throw new InvalidDataException(problems[0] + more);
    }

    private static string Format(long[] shape) => $"[{string.Join(", ", shape)}]";

    public static bool IsIgnored(string name, int layers) =>
        Ignored.IsMatch(name) || (LayerIndex.Match(name) is { Success: true } m && int.Parse(m.Groups[1].Value) >= layers);
}
