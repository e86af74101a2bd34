using Tune.Cli;
using Tune.Tests.Serve;

namespace Tune.Tests.Cli;

/// <summary>`tune serve`'s option handling through the real entry point (serving itself is tested in tests/Serve).</summary>
[Collection("torch")]
public sealed class ServeCommandTests
{
    private static async Task<(int Exit, string Err)> Tune(params string[] args)
    {
        var error = new StringWriter();
        int exit = await Program.Run(args, new StringWriter(), error);
        return (exit, error.ToString());
    }

    [Fact]
    public async Task AnAdapterWithoutANameIsRefused()
    {
        var (exit, error) = await Tune("serve", "--model", ServeModels.Checkpoint, "--adapter", ServeModels.Adapter, "--port", "0");
        Assert.Equal(2, exit);
        Assert.Contains("expected NAME=DIR", error);
    }

    [Fact]
    public async Task AMissingGgufFileIsAnErrorNotACrash()
    {
        string missing = Path.Combine(Path.GetTempPath(), $"missing-{Guid.NewGuid():N}.gguf");
        var (exit, error) = await Tune("serve", "--model", missing, "--port", "0", "--device", "cpu");
        Assert.Equal(2, exit);
        Assert.Contains(Path.GetFileName(missing), error);
    }

    [Theory]
    [InlineData("--parallel", "0")]
    [InlineData("--queue", "-1")]
    public async Task BadNumbersNameTheirOption(string option, string value)
    {
        var (exit, error) = await Tune("serve", "--model", ServeModels.Checkpoint, option, value, "--port", "0", "--device", "cpu");
        Assert.Equal(2, exit);
        Assert.Contains($"{option} {value}", error);
    }
}
