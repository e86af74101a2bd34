namespace Tune.Tests.Training;

/// <summary>A training log that cancels the run when a line containing <paramref name="marker"/> is written.</summary>
internal sealed class InterruptAt(string marker) : StringWriter
{
    private readonly CancellationTokenSource _source = new();

    public CancellationToken Token => _source.Token;

    public override void WriteLine(string? value)
    {
        if (value?.Contains(marker) == true) _source.Cancel();
    }
}
