using System.Text;
using System.Text.RegularExpressions;

namespace Tune.Quantize;

/// <summary>
/// The order llama-quantize reads and writes tensors (llama-model-loader.h, weight_name_comparer): by the layer
/// parsed from <c>blk.N.</c> (−1 for tensors outside layers), then by the name's bytes.
/// </summary>
public sealed partial class TensorOrder : IComparer<string>
{
    public static TensorOrder Instance { get; } = new();

    public int Compare(string? a, string? b)
    {
        int byLayer = Layer(a!).CompareTo(Layer(b!));
        return byLayer != 0 ? byLayer : Encoding.UTF8.GetBytes(a!).AsSpan().SequenceCompareTo(Encoding.UTF8.GetBytes(b!));
    }

    private static int Layer(string name)
    {
        Match m = BlockPrefix().Match(name);
        return m.Success && int.TryParse(m.Groups[1].ValueSpan, out int layer) ? layer : -1;
    }

    [GeneratedRegex(@"^blk\.(\d+)\.")]
    private static partial Regex BlockPrefix();
}
