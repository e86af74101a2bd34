using Tune.Model;
using static TorchSharp.torch;

namespace Tune.Tests.Gguf;

/// <summary>Decoding as the server runs it (the latent cache, the absorbed form llama.cpp runs too), for comparisons with llama.cpp.</summary>
internal static class GreedyDecoding
{
    /// <summary>Greedy decoding without stopping at EOS: the tokens chosen and, for each, the logits it was chosen from.</summary>
    public static (int[] Tokens, float[][] Logits) Run(DeepSeekV2ForCausalLM model, int[] prompt, int count)
    {
        using var grad = no_grad();
        using var cache = new LatentCache(model.Config, 1, prompt.Length + count, model.Runtime);
        var produced = new int[count];
        var logits = new float[count][];
        long[] input = prompt.Select(i => (long)i).ToArray();
        for (int i = 0; i < count; i++)
        {
            using var scope = NewDisposeScope();
            logits[i] = model.Forward(tensor(input).unsqueeze(0), cache)[0, -1].data<float>().ToArray();
            produced[i] = ArgMax(logits[i]);
            input = [produced[i]];
        }
        return (produced, logits);
    }

    /// <summary>Logits at every position, evaluated in one batch through the latent cache.</summary>
    public static float[][] Logits(DeepSeekV2ForCausalLM model, int[] ids)
    {
        using var grad = no_grad();
        using var cache = new LatentCache(model.Config, 1, ids.Length, model.Runtime);
        using var scope = NewDisposeScope();
        Tensor logits = model.Forward(tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0), cache)[0];
        return Enumerable.Range(0, ids.Length).Select(t => logits[t].data<float>().ToArray()).ToArray();
    }

    public static int ArgMax(float[] v) => Array.IndexOf(v, v.Max());

    /// <summary>Top-1 logit minus top-2: how far every logit would have to move, at most half of it each, to change the argmax.</summary>
    public static double Margin(float[] v)
    {
        float first = float.NegativeInfinity, second = float.NegativeInfinity;
        foreach (float x in v)
        {
            if (x > first) (first, second) = (x, first);
            else if (x > second) second = x;
        }
        return first - second;
    }

    public static double[] Softmax(float[] logits)
    {
        double max = logits.Max();
        double[] e = logits.Select(l => Math.Exp(l - max)).ToArray();
        double sum = e.Sum();
        return e.Select(x => x / sum).ToArray();
    }
}
