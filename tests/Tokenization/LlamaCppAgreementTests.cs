using Tune.Model.Tokenization;
using Xunit.Abstractions;

namespace Tune.Tests.Tokenization;

/// <summary>
/// Our tokenizer on DeepSeek LLM's tokenizer.json against llama.cpp on the GGUF made from the same model: every
/// string must give identical ids. llama.cpp is an independent implementation (its own regex handling, its own BPE).
/// </summary>
public sealed class LlamaCppAgreementTests(ITestOutputHelper output)
{
    private const int RandomStrings = 400;
    private const int Seed = 20240617;

    [Fact]
    public void VariedTextAndRepositorySourcesTokenizeExactlyAsLlamaCpp()
    {
        var files = VariedStrings.RepositoryFiles();
        var cases = VariedStrings.Handwritten.Select(text => ("handwritten", text))
            .Concat(VariedStrings.Random(RandomStrings, Seed).Select((text, i) => ($"random #{i}", text)))
            .Concat(files.Select(f => (Path.GetRelativePath(RepoPaths.Root, f.Path), f.Text)))
            .ToList();

        var expected = LlamaCppOracle.Tokenize(TokenizationFiles.DeepSeekLlmGguf, [.. cases.Select(c => c.Item2)], specialTokens: false);
        AssertSame(cases, expected, text => LoadedTokenizers.DeepSeekLlm.EncodeText(text));
        output.WriteLine($"{cases.Count} strings ({files.Count} repository files, {cases.Sum(c => c.Item2.Length)} chars) agree with llama.cpp");
    }

    [Fact]
    public void AddedTokenTextBecomesControlTokensExactlyAsInLlamaCppWithSpecialTokens()
    {
        string bos = DeepSeekTokenizer.DefaultBosToken, eos = DeepSeekTokenizer.DefaultEosToken;
        var cases = new[]
        {
            $"{bos}Hello{eos}", $"{bos}{bos}", $"x{eos}y{bos}z", $"Führer{eos}", $" {bos} ", $"<｜begin▁of▁sentence｜", bos,
            RenderedChat(),
        }.Select(text => ("special", text)).ToList();

        var expected = LlamaCppOracle.Tokenize(TokenizationFiles.DeepSeekLlmGguf, [.. cases.Select(c => c.Item2)], specialTokens: true);
        AssertSame(cases, expected, text => LoadedTokenizers.DeepSeekLlm.EncodeWithAddedTokens(text));
    }

    [Fact]
    public void ChatPromptIdsEqualLlamaCppTokenizingTheRenderedTemplate()
    {
        EncodedPrompt prompt = ChatPrompt.Build(LoadedTokenizers.DeepSeekLlm, Conversation, addGenerationPrompt: true);
        var expected = LlamaCppOracle.Tokenize(TokenizationFiles.DeepSeekLlmGguf, [prompt.Text], specialTokens: true);
        Assert.Equal(expected[0], prompt.Ids);
    }

    private static readonly ChatMessage[] Conversation =
    [
        new(ChatRole.System, "You are a helpful assistant."),
        new(ChatRole.User, "Write a haiku about llamas 🦙."),
        new(ChatRole.Assistant, "Soft wool on the hills,\nquiet eyes above the clouds —\nAndes afternoon."),
        new(ChatRole.User, "Now in Japanese: 日本語で"),
    ];

    private static string RenderedChat() =>
        ChatPrompt.Build(LoadedTokenizers.DeepSeekLlm, Conversation, addGenerationPrompt: true).Text;

    private void AssertSame(IReadOnlyList<(string Name, string Text)> cases, int[][] expected, Func<string, int[]> encode)
    {
        var mismatches = new List<string>();
        for (int i = 0; i < cases.Count; i++)
        {
            int[] actual = encode(cases[i].Text);
            if (actual.SequenceEqual(expected[i])) continue;
            int at = actual.Zip(expected[i]).TakeWhile(p => p.First == p.Second).Count();
            mismatches.Add($"{cases[i].Name} {LlamaCppVectorTests.Show(cases[i].Text)}: first difference at token {at}: " +
                $"llama.cpp [{Window(expected[i], at)}], ours [{Window(actual, at)}]");
        }
        output.WriteLine($"{cases.Count - mismatches.Count}/{cases.Count} identical");
        Assert.True(mismatches.Count == 0,
            $"{mismatches.Count} of {cases.Count} strings differ from llama.cpp; the first ones:\n{string.Join('\n', mismatches.Take(10))}");
    }

    private static string Window(int[] ids, int at) =>
        (at > 2 ? "… " : "") + string.Join(' ', ids.Skip(Math.Max(0, at - 2)).Take(8)) + (ids.Length > at + 6 ? " …" : "");
}
