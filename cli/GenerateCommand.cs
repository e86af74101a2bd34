using System.CommandLine;

namespace Tune.Cli;

internal static class GenerateCommand
{
    public static Command Create() => new("generate", "placeholder");
}
