using System.Diagnostics;
using Tune.Convert;

namespace Tune.Cli;

/// <summary>
/// Conversion progress on standard error: tensors and megabytes done of the totals, MB/s and ETA. Redrawn in place
/// on a terminal, a plain line every few seconds when redirected, like <see cref="ProgressLine"/>.
/// </summary>
internal sealed class ConvertProgressLine(TextWriter error)
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly bool _interactive = !Console.IsErrorRedirected && ReferenceEquals(error, Console.Error);
    private TimeSpan _lastDrawn = TimeSpan.FromDays(-1);
    private bool _drawn;

    public void Report(ConvertProgress p)
    {
        TimeSpan now = _clock.Elapsed;
        bool finished = p.TensorsDone == p.TensorCount;
        if (!finished && now - _lastDrawn < (_interactive ? TimeSpan.FromMilliseconds(200) : TimeSpan.FromSeconds(5))) return;
        _lastDrawn = now;
        double mb = p.BytesDone / 1e6, totalMb = p.ByteCount / 1e6;
        double rate = mb / Math.Max(now.TotalSeconds, 1e-9);
        TimeSpan eta = rate > 0 ? TimeSpan.FromSeconds((totalMb - mb) / rate) : TimeSpan.Zero;
        string line = $"{p.TensorsDone}/{p.TensorCount} tensors, {mb:F0}/{totalMb:F0} MB ({100.0 * p.BytesDone / Math.Max(p.ByteCount, 1):F0}%), " +
                      $"{rate:F0} MB/s, ETA {eta:mm\\:ss}";
        if (_interactive) error.Write("\r" + line.PadRight(78));
        else error.WriteLine(line);
        _drawn = true;
    }

    public void Done()
    {
        if (_interactive && _drawn) error.WriteLine();
    }
}
