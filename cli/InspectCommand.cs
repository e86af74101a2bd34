using System.CommandLine;
using Tune.Formats;

namespace Tune.Cli;

internal static class InspectCommand
{
    public static Command Create()
    {
        var path = new Argument<string>("path") { Description = "A Hugging Face model directory, or a .gguf file", HelpName = "DIR|FILE.gguf" };
        var command = new Command("inspect", "Summarise a checkpoint (architecture, parameters, dtypes, shards, tokenizer) or a GGUF file (metadata, tensors)")
        {
            path,
        };
        command.SetAction(parse =>
        {
            string target = parse.GetValue(path)!;
            if (target.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)) InspectGguf.Describe(target, parse.InvocationConfiguration.Output);
            else Describe(target, parse.InvocationConfiguration.Output);
            return 0;
        });
        return command;
    }

    public static void Describe(string directory, TextWriter o)
    {
        using var checkpoint = CheckpointDirectory.Open(directory);
        DeepSeekV2Config c = checkpoint.Config;
        o.WriteLine($"model          {Path.GetFullPath(directory)}");
        o.WriteLine($"architecture   {c.Architecture} ({c.ModelType})");
        o.WriteLine($"layers         {c.NumHiddenLayers} (dense below {c.FirstKDenseReplace}, MoE every {c.MoeLayerFreq} after), hidden {c.HiddenSize}, vocab {c.VocabSize}");
        string query = c.QLoraRank is { } rq ? $"q_a_proj→q_b_proj (rank {rq})" : "q_proj";
        o.WriteLine($"attention      MLA: {c.NumAttentionHeads} heads, {query}, kv_lora_rank {c.KvLoraRank}, " +
                    $"q/k head {c.QkNopeHeadDim}+{c.QkRopeHeadDim}, v head {c.VHeadDim}");
        o.WriteLine($"               cache {c.KvLoraRank + c.QkRopeHeadDim} values per token per layer");
        if (c.NRoutedExperts is { } experts)
            o.WriteLine($"experts        {experts} routed of {c.MoeIntermediateSize} (top-{c.NumExpertsPerTok}, {c.TopkMethod}" +
                        (c.TopkMethod == "group_limited_greedy" ? $" {c.TopkGroup} of {c.NGroup} groups" : "") +
                        $", norm_topk_prob {c.NormTopkProb}, scale {c.RoutedScalingFactor}), {c.NSharedExperts} shared");
        o.WriteLine($"rope           theta {c.RopeTheta}, " + (c.RopeScaling is { } s
            ? $"YaRN ×{s.Factor} from {s.OriginalMaxPositionEmbeddings} (mscale {s.Mscale}, mscale_all_dim {s.MscaleAllDim})"
            : "no scaling") + $", context {c.MaxPositionEmbeddings}");

        IReadOnlyList<TensorSpec> expected = CheckpointLayout.Tensors(c);
        var present = checkpoint.Tensors.ToList();
        o.WriteLine($"parameters     {CheckpointLayout.ParameterCount(c):N0} total, {CheckpointLayout.ActiveParameterCount(c):N0} active per token");
        string dtypes = string.Join(", ", present.GroupBy(t => t.DType).Select(g => $"{g.Key} {g.Count()} tensors, {g.Sum(t => t.ByteLength):N0} bytes"));
        o.WriteLine($"tensors        {present.Count} ({dtypes})");
        var missing = expected.Select(t => t.Name).Except(present.Select(t => t.Name)).ToList();
        var unexpected = present.Select(t => t.Name).Except(expected.Select(t => t.Name)).ToList();
        if (missing.Count > 0) o.WriteLine($"               missing {missing.Count}: {string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", …" : "")}");
        if (unexpected.Count > 0) o.WriteLine($"               not used {unexpected.Count}: {string.Join(", ", unexpected.Take(5))}{(unexpected.Count > 5 ? ", …" : "")}");
        o.WriteLine($"shards         {checkpoint.ShardFiles.Count}: {string.Join(", ", checkpoint.ShardFiles.Select(Path.GetFileName))}");

        string tokenizerPath = Path.Combine(directory, "tokenizer.json");
        if (!File.Exists(tokenizerPath))
        {
            o.WriteLine("tokenizer      none (no tokenizer.json)");
            return;
        }
        string configPath = Path.Combine(directory, "tokenizer_config.json");
        TokenizerJson tokenizer = TokenizerJson.Load(tokenizerPath, File.Exists(configPath) ? configPath : null);
        o.WriteLine($"tokenizer      byte-level BPE, {tokenizer.TokensById.Count:N0} ids ({tokenizer.Vocab.Count:N0} BPE tokens, " +
                    $"{tokenizer.Merges.Count:N0} merges, {tokenizer.AddedTokens.Count} added), {tokenizer.SplitRegexes.Count} split regexes");
        o.WriteLine($"               bos {tokenizer.BosToken ?? "-"} (add {tokenizer.AddBos}), eos {tokenizer.EosToken ?? "-"}, " +
                    $"chat template {(tokenizer.ChatTemplate is null ? "none" : "yes")}");
    }
}
