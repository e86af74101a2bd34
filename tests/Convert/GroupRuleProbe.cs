using TorchSharp;
using Tune.Formats;
using Tune.Model;
using static TorchSharp.torch;

namespace Tune.Tests.Convert;

/// <summary>
/// group_limited_greedy ranks expert groups by their best score in the HF model and by the sum of their two best
/// scores in llama.cpp (gguf.md §2.7). This finds prompts on which both rules keep the same groups at every position
/// of every MoE layer, by running Tune's own layers and reading the router scores, so llama.cpp can be compared
/// exactly on them.
/// </summary>
internal static class GroupRuleProbe
{
    private const int MaxTriesPerPosition = 200;

    /// <summary>
    /// A prompt of <paramref name="length"/> tokens starting with <paramref name="first"/>, extended one random token at
    /// a time, keeping only tokens where the rules agree. <paramref name="rejected"/> counts the tokens where they did not.
    /// </summary>
    public static int[] AgreeingPrompt(DeepSeekV2ForCausalLM model, int first, int length, int maxToken, int seed, out int rejected)
    {
        var random = new Random(seed);
        var prompt = new List<int> { first };
        rejected = 0;
        if (!Agree(model, prompt)) throw new InvalidOperationException($"the rules disagree on token {first} alone; pick another first token");
        while (prompt.Count < length)
        {
            for (int tries = 0; ; tries++)
            {
                if (tries == MaxTriesPerPosition) throw new InvalidOperationException($"no agreeing token at position {prompt.Count}");
                prompt.Add(random.Next(maxToken));
                if (Agree(model, prompt)) break;
                prompt.RemoveAt(prompt.Count - 1);
                rejected++;
            }
        }
        return [.. prompt];
    }

    /// <summary>Whether both rules keep the same groups for the last token of <paramref name="ids"/> in every MoE layer.</summary>
    public static bool Agree(DeepSeekV2ForCausalLM model, IReadOnlyList<int> ids)
    {
        DeepSeekV2Config c = model.Config;
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module);
        using var grad = no_grad();
        using var scope = NewDisposeScope();
        long t = ids.Count;
        var embedding = (TokenEmbedding)modules["model.embed_tokens"];
        Tensor h = embedding.Lookup(tensor(ids.Select(i => (long)i).ToArray())).view(1, t, c.HiddenSize);
        for (int layer = 0; layer < c.NumHiddenLayers; layer++)
        {
            string p = $"model.layers.{layer}";
            if (c.IsMoeLayer(layer))
            {
                var inputNorm = (RmsNorm)modules[p + ".input_layernorm"];
                var attention = (MlaAttention)modules[p + ".self_attn"];
                var postNorm = (RmsNorm)modules[p + ".post_attention_layernorm"];
                var router = (MoeRouter)modules[p + ".mlp.gate"];
                Tensor x = postNorm.Forward(h + attention.Forward(inputNorm.Forward(h), layer, null));
                float[] scores = router.Route(x.view(t, c.HiddenSize)).Scores[t - 1].data<float>().ToArray();
                if (!SameGroups(scores, c.NGroup!.Value, c.TopkGroup!.Value)) return false;
            }
            h = ((DecoderLayer)modules[p]).Forward(h, null, null, null);
        }
        return true;
    }

    private static bool SameGroups(float[] scores, int groups, int kept)
    {
        int size = scores.Length / groups;
        float[] best = new float[groups], topTwo = new float[groups];
        for (int g = 0; g < groups; g++)
        {
            float[] members = scores.AsSpan(g * size, size).ToArray().OrderDescending().ToArray();
            best[g] = members[0];
            topTwo[g] = members[0] + members[1];
        }
        static HashSet<int> Top(float[] v, int k) => [.. Enumerable.Range(0, v.Length).OrderByDescending(i => v[i]).Take(k)];
        return Top(best, kept).SetEquals(Top(topTwo, kept));
    }
}
