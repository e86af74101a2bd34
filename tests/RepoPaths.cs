using System.Reflection;

namespace Tune.Tests;

/// <summary>Repository locations, from the source path recorded at build time (see Tune.Tests.csproj).</summary>
public static class RepoPaths
{
    public static string Root { get; } = typeof(RepoPaths).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "RepoRoot").Value!;

    public static string Tokenizers => Path.Combine(Root, "tokenizers", "deepseek-v2");

    /// <summary>The llama.cpp source that oracle/setup.sh unpacks from npm's node-llama-cpp.</summary>
    public static string LlamaCpp => Path.Combine(Root, "oracle", "llama.cpp");
}
