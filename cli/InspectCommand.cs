using System.CommandLine;

namespace Tune.Cli;

internal static class InspectCommand
{
    public static Command Create() => new("inspect", "placeholder");
}
