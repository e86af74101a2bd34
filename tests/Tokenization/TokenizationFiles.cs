namespace Tune.Tests.Tokenization;

/// <summary>Where the tokenizer files, llama.cpp's vectors and the oracle live.</summary>
internal static class TokenizationFiles
{
    public static string V2TokenizerDirectory => Existing(RepoPaths.Tokenizers);

    public static string DeepSeekLlmTokenizerJson => Existing(Path.Combine(RepoPaths.Root, "tokenizers", "deepseek-llm", "tokenizer.json"));

    public static string OracleScript => Path.Combine(RepoPaths.Root, "oracle", "tokenize.mjs");

    public static string OracleModules => Path.Combine(RepoPaths.Root, "oracle", "node_modules", "node-llama-cpp");

    /// <summary>llama.cpp's vocab-only GGUF of DeepSeek LLM 7B; its .inp/.out next to it are the test vectors.</summary>
    public static string DeepSeekLlmGguf => OracleFile(Path.Combine("models", "ggml-vocab-deepseek-llm.gguf"));

    public static string OracleFile(string relativeToLlamaCpp)
    {
        string path = Path.Combine(RepoPaths.LlamaCpp, relativeToLlamaCpp);
        if (!File.Exists(path))
            Assert.Fail($"{path} is missing: the llama.cpp oracle is not installed; run oracle/setup.sh");
        return path;
    }

    private static string Existing(string path)
    {
        if (!File.Exists(path) && !Directory.Exists(path)) Assert.Fail($"{path} is missing from the repository");
        return path;
    }
}
