using System.Text.RegularExpressions;
using Tune.Formats;

namespace Tune.Quantize;

/// <summary>What the rules of <see cref="TypePolicy"/> look at for one tensor.</summary>
/// <param name="Layer">The layer of the tensor (parsed from <c>blk.N.</c> when the model has experts, else the count of such tensors seen so far).</param>
/// <param name="VLikeIndex">How many attention-v-like tensors came before this one, in processing order.</param>
public sealed record RuleContext(QuantizationMix Mix, long RowLength, int Layer, int LayerCount, int VLikeIndex, int VLikeCount, int ExpertCount);

/// <summary>In <paramref name="Mixes"/> (all when null), a tensor of one of <paramref name="Categories"/> for which <paramref name="When"/> holds gets <paramref name="Type"/>.</summary>
public sealed record TypeRule(QuantizationMix[]? Mixes, TensorCategory Categories, Func<RuleContext, bool> When, GgmlType Type);

/// <summary>One tensor of the output: its input type and the type it is written in.</summary>
public sealed record TensorChoice(string Name, long[] Dimensions, GgmlType InputType, GgmlType Type, TensorCategory Category)
{
    public bool IsCopied => InputType == Type;

    public long ElementCount => Dimensions.Aggregate(1L, (n, d) => checked(n * d));
}

/// <summary>
/// The per-tensor types llama.cpp's llama_model_quantize picks without importance matrix, overrides or --pure
/// (llama-quant.cpp, llama_tensor_get_type → llama_tensor_get_type_impl → tensor_type_fallback), for the mixtures
/// Tune writes, on non-Falcon architectures such as deepseek2. Rules are tried in table order and the first that
/// applies wins; a tensor no rule matches gets the mixture's default type.
/// </summary>
public static partial class TypePolicy
{
    private static readonly QuantizationMix[] KMixes = [QuantizationMix.Q4_K_S, QuantizationMix.Q4_K_M];

    public static IReadOnlyList<TypeRule> Rules { get; } =
    [
        // The output matrix (and a tied token embedding) gets Q6_K, or Q8_0 when rows are not whole default blocks.
        new(null, TensorCategory.Output, c => c.RowLength % c.Mix.DefaultType.BlockSize() != 0, GgmlType.Q8_0),
        new(null, TensorCategory.Output, c => c.Mix.DefaultType != GgmlType.Q8_0, GgmlType.Q6_K),
        // Mixtral-style 8-expert models: "bumping this to Q8_0 trades just ~128MB"; applied after, so it overrides.
        new(null, TensorCategory.AttentionVLike, c => c.ExpertCount == 8, GgmlType.Q8_0),
        new([QuantizationMix.Q4_K_M], TensorCategory.AttentionVLike, c => UseMoreBits(c.VLikeIndex, c.VLikeCount), GgmlType.Q6_K),
        new([QuantizationMix.Q4_K_S], TensorCategory.AttentionVLike, c => c.VLikeIndex < 4, GgmlType.Q5_K),
        new(null, TensorCategory.AttentionK, c => c.ExpertCount == 8, GgmlType.Q8_0),
        new([QuantizationMix.Q4_K_M], TensorCategory.FfnDown, c => UseMoreBits(c.Layer, c.LayerCount), GgmlType.Q6_K),
        new([QuantizationMix.Q4_K_S], TensorCategory.FfnDown, c => c.Layer < c.LayerCount / 8, GgmlType.Q5_K),
        new(KMixes, TensorCategory.AttentionOutput, c => c.ExpertCount == 8, GgmlType.Q5_K),
        new([QuantizationMix.Q4_K_M], TensorCategory.AttentionQkv, _ => true, GgmlType.Q5_K),
    ];

    /// <summary>tensor_type_fallback: the 32-block type for rows that are not whole 256-blocks.</summary>
    public static IReadOnlyDictionary<GgmlType, GgmlType> Fallbacks { get; } = new Dictionary<GgmlType, GgmlType>
    {
        [GgmlType.Q4_K] = GgmlType.Q5_0,
        [GgmlType.Q5_K] = GgmlType.Q5_1,
        [GgmlType.Q6_K] = GgmlType.Q8_0,
        [GgmlType.Q2_K] = GgmlType.Q4_0,
        [GgmlType.Q3_K] = GgmlType.Q4_0,
    };

    /// <summary>llama-quant.cpp's use_more_bits: the first and last eighth of the layers and every third one between.</summary>
    public static bool UseMoreBits(int i, int n) => i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;

    /// <summary>
    /// Types for the tensors of a file with <paramref name="metadata"/>, with the layer and expert counts
    /// llama_model_quantize reads from it (<c>{arch}.block_count</c>, <c>{arch}.expert_count</c>).
    /// </summary>
    public static IReadOnlyList<TensorChoice> Choose(IReadOnlyList<GgufTensorInfo> tensors, QuantizationMix mix,
        IReadOnlyList<KeyValuePair<string, GgufValue>> metadata)
    {
        GgufValue? Find(string key) => metadata.FirstOrDefault(kv => kv.Key == key).Value;
        string arch = (Find("general.architecture") ?? throw new InvalidDataException("no general.architecture key")).As<string>();
        uint layers = (Find($"{arch}.block_count") ?? throw new InvalidDataException($"no {arch}.block_count key")).As<uint>();
        uint experts = Find($"{arch}.expert_count")?.As<uint>() ?? 0;
        return Choose(tensors, mix, checked((int)layers), checked((int)experts));
    }

    /// <summary>
    /// Types for <paramref name="tensors"/>, which must be in llama-quantize's processing order
    /// (<see cref="TensorOrder"/>): the v-like and ffn_down counters advance along it.
    /// </summary>
    public static IReadOnlyList<TensorChoice> Choose(IReadOnlyList<GgufTensorInfo> tensors, QuantizationMix mix, int layerCount, int expertCount)
    {
        TensorCategory[] categories = tensors.Select(t => TensorCategories.Of(t.Name)).ToArray();
        bool tied = !categories.Contains(TensorCategory.Output);
        int vLikeCount = categories.Count(c => (c & TensorCategory.AttentionVLike) != 0);
        int vLikeIndex = 0, ffnDownIndex = 0;
        var choices = new List<TensorChoice>(tensors.Count);
        for (int i = 0; i < tensors.Count; i++)
        {
            GgufTensorInfo t = tensors[i];
            TensorCategory category = tied && categories[i] == TensorCategory.TokenEmbedding ? TensorCategory.Output : categories[i];
            if (!QuantizableTensors.Allows(t.Name, t.Dimensions))
            {
                choices.Add(new TensorChoice(t.Name, t.Dimensions, t.Type, t.Type, categories[i]));
                continue;
            }
            int layer = category == TensorCategory.FfnDown ? LayerOf(t.Name, ffnDownIndex, layerCount, expertCount) : 0;
            var context = new RuleContext(mix, t.Dimensions[0], layer, layerCount, vLikeIndex, vLikeCount, expertCount);
            TypeRule? rule = Rules.FirstOrDefault(r => (r.Mixes is null || r.Mixes.Contains(mix)) && (r.Categories & category) != 0 && r.When(context));
            choices.Add(new TensorChoice(t.Name, t.Dimensions, t.Type, Fallback(rule?.Type ?? mix.DefaultType, t.Dimensions[0]), categories[i]));
            if ((category & TensorCategory.AttentionVLike) != 0) vLikeIndex++;
            if (category == TensorCategory.FfnDown) ffnDownIndex++;
        }
        return choices;
    }

    /// <summary>tensor_type_fallback: a type whose blocks divide the row, F16 when even the fallback's do not.</summary>
    public static GgmlType Fallback(GgmlType type, long rowLength)
    {
        if (rowLength % type.BlockSize() == 0) return type;
        GgmlType fallback = Fallbacks.TryGetValue(type, out GgmlType smaller) ? smaller : type;
        return rowLength % fallback.BlockSize() == 0 ? fallback : GgmlType.F16;
    }

    // layer_info: "experts in the FFN of Mixtral-8x7B are not consecutive", so with experts the layer is parsed.
    private static int LayerOf(string name, int counter, int layerCount, int expertCount)
    {
        if (expertCount <= 1) return counter;
        Match m = BlockPrefix().Match(name);
        if (!m.Success) throw new InvalidDataException($"tensor \"{name}\": cannot tell its layer (no blk.N. prefix)");
        int layer = int.Parse(m.Groups[1].ValueSpan);
        if (layer >= layerCount) throw new InvalidDataException($"tensor \"{name}\": layer {layer} is not below block_count {layerCount}");
        return layer;
    }

    [GeneratedRegex(@"^blk\.(\d+)\.")]
    private static partial Regex BlockPrefix();
}
