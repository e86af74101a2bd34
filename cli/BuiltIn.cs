using Tune.Formats;

namespace Tune.Cli;

/// <summary>Configs and the tokenizer that ship with the `tune` binary.</summary>
internal static class BuiltIn
{
    public static string ConfigDirectory => Path.Combine(AppContext.BaseDirectory, "configs");
    public static string TokenizerDirectory => Path.Combine(AppContext.BaseDirectory, "tokenizers", "deepseek-v2");

    /// <summary>A config.json path, or the name of a shipped config (tiny, lite-shaped).</summary>
    public static DeepSeekV2Config LoadConfig(string pathOrName)
    {
        string shipped = Path.Combine(ConfigDirectory, pathOrName + ".json");
        if (!File.Exists(pathOrName) && File.Exists(shipped)) return DeepSeekV2Config.Load(shipped);
        if (!File.Exists(pathOrName))
        {
            string names = string.Join(", ", Directory.EnumerateFiles(ConfigDirectory, "*.json").Select(Path.GetFileNameWithoutExtension));
            throw new FileNotFoundException($"--config {pathOrName}: no such file, and not a built-in config ({names})");
        }
        return DeepSeekV2Config.Load(pathOrName);
    }
}
