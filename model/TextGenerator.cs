using TorchSharp;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>Autoregressive decoding with the latent KV cache: one prefill of the prompt, then one token per step.</summary>
public sealed class TextGenerator(DeepSeekV2ForCausalLM model)
{
    /// <summary>
    /// Yields generated ids as they are produced; stops at the end-of-sequence id (not yielded), after
    /// <paramref name="maxTokens"/>, at the context limit, or when cancelled. With <paramref name="vocabLimit"/>, only
    /// ids below it are produced: the embedding has rows (up to 102400) beyond the tokenizer's ids that no text maps
    /// to, and a model that is not fully trained can otherwise pick them.
    /// </summary>
    public IEnumerable<int> Generate(IReadOnlyList<int> prompt, int maxTokens, SamplingOptions sampling,
        int? vocabLimit = null, CancellationToken cancel = default)
    {
        if (prompt.Count == 0) throw new ArgumentException("the prompt has no tokens");
        int context = model.Config.MaxPositionEmbeddings;
        if (prompt.Count >= context)
            throw new ArgumentException($"the prompt has {prompt.Count} tokens; the model's context is {context}");
        var sampler = new Sampler(sampling);
        int capacity = (int)Math.Min((long)prompt.Count + maxTokens, context);
        using var cache = new LatentCache(model.Config, 1, capacity, model.Runtime);
        using var noGrad = no_grad();

        float[] logits = LastLogits(prompt.Select(i => (long)i).ToArray(), cache);
        for (int produced = 0; produced < maxTokens && !cancel.IsCancellationRequested; produced++)
        {
            int next = sampler.Next(vocabLimit is { } limit ? logits.AsSpan(0, Math.Min(limit, logits.Length)) : logits);
            if (next == model.Config.EosTokenId) yield break;
            yield return next;
            if (cache.Length >= capacity) yield break;
            logits = LastLogits([next], cache);
        }
    }

    private float[] LastLogits(long[] ids, LatentCache cache)
    {
        using var scope = NewDisposeScope();
        Tensor input = tensor(ids, dtype: ScalarType.Int64).unsqueeze(0);
        Tensor logits = model.Forward(input, cache, lastPositionOnly: true);
        return logits[0, 0].cpu().data<float>().ToArray();
    }
}
