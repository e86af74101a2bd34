using System.CommandLine;

namespace Tune.Cli;

public static class Program
{
    public static Task<int> Main(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>The `tune` command line with explicit writers, so tests run it through the same entry point.</summary>
    public static async Task<int> Run(string[] args, TextWriter output, TextWriter error)
    {
        var root = new RootCommand(
            "Tune: fine-tune, convert, quantise and serve DeepSeek-V2 models (DeepSeek-Coder-V2-Lite first).\n" +
            "Start with `tune new --config tiny --out demo` to make a small random model, then `tune generate --model demo --prompt \"def\"`.")
        {
            NewCommand.Create(),
            ForwardCommand.Create(),
            GenerateCommand.Create(),
            InspectCommand.Create(),
            ConvertCommand.Create(),
            QuantizeCommand.Create(),
            MergeCommand.Create(),
            TrainCommand.Create(),
            ExpertsCommand.Create(),
            ServeCommand.Create(),
            EpCheckCommand.Create(),
        };
        try
        {
            return await root.Parse(args).InvokeAsync(
                new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (e is FormatException or ArgumentException or IOException or InvalidDataException
                                       or InvalidOperationException or KeyNotFoundException or UnauthorizedAccessException
                                       or NotSupportedException)
        {
            // Bad input is the user's to fix: say what and where, without a stack trace.
            error.WriteLine($"error: {e.Message}");
            return 2;
        }
        catch (OperationCanceledException)
        {
            error.WriteLine("cancelled");
            return 130;
        }
    }
}
