using Tune.Model;
using Tune.Model.Tokenization;
using Tune.Trainer.Data;

namespace Tune.Trainer.Training;

/// <summary>How many held-out FIM cases the model completed exactly, out of how many it was given.</summary>
public sealed record FimExactMatchScore(int Matched, int Documents)
{
    public override string ToString() => $"{Matched}/{Documents}";
}

/// <summary>A held-out document cut for FIM exact match: the model sees prefix and suffix and must write the middle, then EOS.</summary>
public sealed record FimCase(string Prefix, string Middle, string Suffix)
{
    /// <summary>
    /// A middle spans at most this many lines: an editor asks for a line or a few, and the generation each case
    /// costs grows with the middle.
    /// </summary>
    public const int MaxMiddleLines = 3;

    /// <summary>
    /// Cuts <paramref name="text"/> (not empty) at line boundaries: the middle is 1 to <see cref="MaxMiddleLines"/>
    /// whole lines from a uniformly drawn first line, so it is never empty (an empty middle would be matched by a
    /// model that only learnt to stop). The draw depends only on the seed and the document's ordinal.
    /// </summary>
    public static FimCase Cut(string text, long seed, long ordinal)
    {
        List<int> starts = [0];
        for (int i = 0; i < text.Length - 1; i++)
            if (text[i] == '\n') starts.Add(i + 1);
        var random = DeterministicRandom.For(seed, RandomStreams.FimExactMatch, ordinal);
        int first = random.NextInt(starts.Count);
        int lines = 1 + random.NextInt(Math.Min(MaxMiddleLines, starts.Count - first));
        int start = starts[first];
        int end = first + lines < starts.Count ? starts[first + lines] : text.Length;
        return new FimCase(text[..start], text[start..end], text[end..]);
    }
}

/// <summary>
/// FIM exact match: greedy PSM completion of each case, matched by ordinal string equality with the middle (no
/// trimming: a completion that loses the middle's final newline would break the line it is inserted into).
/// </summary>
internal static class FimExactMatch
{
    /// <summary>
    /// Tokens allowed past the middle's own count: greedy decoding may spell the same text in more tokens. A model
    /// that writes the middle and does not stop at EOS within the margin fails, as it would in an editor.
    /// </summary>
    public const int TokenMargin = 8;

    public static bool Matches(string generated, string middle) => string.Equals(generated, middle, StringComparison.Ordinal);

    public static FimExactMatchScore Measure(DeepSeekV2ForCausalLM model, DeepSeekTokenizer tokenizer, IReadOnlyList<FimCase> cases,
        CancellationToken cancel)
    {
        model.eval();
        var generator = new TextGenerator(model);
        int matched = 0;
        foreach (FimCase c in cases)
        {
            EncodedPrompt prompt = FimPrompt.Build(tokenizer, c.Prefix, c.Suffix);
            int limit = tokenizer.EncodeText(c.Middle).Length + TokenMargin;
            // The generator stops at config.json's eos_token_id; the middle ends at the tokenizer's, which training
            // puts after it, and a checkpoint's two need not agree.
            int[] ids = [.. generator.Generate(prompt.Ids, limit, new SamplingOptions(), tokenizer.VocabSize, cancel)
                .TakeWhile(id => id != tokenizer.EosId)];
            if (Matches(tokenizer.Decode(ids, skipSpecial: false), c.Middle)) matched++;
        }
        // The generator stops quietly when cancelled; a count over the cases it did not finish would mislead.
        cancel.ThrowIfCancellationRequested();
        model.train();
        return new FimExactMatchScore(matched, cases.Count);
    }
}
