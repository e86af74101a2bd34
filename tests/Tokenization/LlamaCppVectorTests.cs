using System.Text;

namespace Tune.Tests.Tokenization;

/// <summary>llama.cpp's own test vectors for the deepseek-llm vocabulary (tests/test-tokenizer-0.cpp reads them the same way).</summary>
public sealed class LlamaCppVectorTests
{
    private const string Separator = "\n__ggml_vocab_test__\n";

    [Fact]
    public void DeepSeekLlmTokenizerJsonReproducesAll46LlamaCppVectors()
    {
        string gguf = TokenizationFiles.DeepSeekLlmGguf;
        var inputs = ReadInputs(File.ReadAllText(gguf + ".inp", Encoding.UTF8));
        var expected = File.ReadAllLines(gguf + ".out")
            .Select(line => line.Trim())
            .Select(line => line.Length == 0 ? Array.Empty<int>() : line.Split(' ').Select(int.Parse).ToArray())
            .ToArray();
        Assert.Equal(46, inputs.Count);
        Assert.Equal(inputs.Count, expected.Length);

        var failures = new List<string>();
        for (int i = 0; i < inputs.Count; i++)
        {
            int[] actual = LoadedTokenizers.DeepSeekLlm.EncodeText(inputs[i]);
            if (!actual.SequenceEqual(expected[i]))
                failures.Add($"#{i} {Show(inputs[i])}: expected [{string.Join(' ', expected[i])}], got [{string.Join(' ', actual)}]");
        }
        Assert.True(failures.Count == 0, $"{failures.Count}/{inputs.Count} vectors differ:\n{string.Join('\n', failures)}");
    }

    /// <summary>Inputs are separated by a line "__ggml_vocab_test__"; the file ends with one.</summary>
    private static List<string> ReadInputs(string raw)
    {
        var inputs = new List<string>();
        int at = 0;
        while (at < raw.Length)
        {
            int next = raw.IndexOf(Separator, at, StringComparison.Ordinal);
            if (next < 0) { inputs.Add(raw[at..]); break; }
            inputs.Add(raw[at..next]);
            at = next + Separator.Length;
        }
        return inputs;
    }

    internal static string Show(string text) =>
        System.Text.Json.JsonSerializer.Serialize(text.Length > 80 ? text[..80] + "…" : text);
}
