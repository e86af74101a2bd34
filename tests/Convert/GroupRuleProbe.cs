using TorchSharp;
using Tune.Formats;
using Tune.Model;
using static TorchSharp.torch;

namespace Tune.Tests.Convert;

/// <summary>
/// group_limited_greedy ranks expert groups by their best score in the HF model and by the sum of their two best
/// scores in llama.cpp (gguf.md §2.7). This finds prompts on which both rules keep the same groups at every position
/// of every MoE layer, reading the router scores of Tune's own forward pass, so llama.cpp can be compared exactly on them.
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
        if (!LastTokenAgrees(model, prompt)) throw new InvalidOperationException($"the rules disagree on token {first} alone; pick another first token");
        while (prompt.Count < length)
        {
            for (int tries = 0; ; tries++)
            {
                if (tries == MaxTriesPerPosition) throw new InvalidOperationException($"no agreeing token at position {prompt.Count}");
                prompt.Add(random.Next(maxToken));
                if (LastTokenAgrees(model, prompt)) break;
                prompt.RemoveAt(prompt.Count - 1);
                rejected++;
            }
        }
        return [.. prompt];
    }

    /// <summary>Whether both rules keep the same groups for the last token of <paramref name="ids"/> in every MoE layer.</summary>
    private static bool LastTokenAgrees(DeepSeekV2ForCausalLM model, IReadOnlyList<int> ids)
    {
        DeepSeekV2Config c = model.Config;
        bool agree = true;
        void Observe(Routing routing) =>
            agree &= SameGroups(routing.Scores[ids.Count - 1].data<float>().ToArray(), c.NGroup!.Value, c.TopkGroup!.Value);
        MoeLayer[] moe = model.Layers.Select(l => l.Moe).OfType<MoeLayer>().ToArray();
        foreach (MoeLayer layer in moe) layer.RoutingObserver += Observe;
        try
        {
            using var grad = no_grad();
            using var scope = NewDisposeScope();
            model.Forward(tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0));
        }
        finally
        {
            foreach (MoeLayer layer in moe) layer.RoutingObserver -= Observe;
        }
        return agree;
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
