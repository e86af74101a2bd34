using System.Diagnostics;

namespace Tune.Cli;

/// <summary>
/// Progress on standard error as "done/total, rate, ETA": redrawn in place on a terminal, and as a plain line every
/// few seconds when redirected (CI logs), so standard output stays clean for scripts.
/// </summary>
internal sealed class ProgressLine(TextWriter error, string unit)
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly bool _interactive = !Console.IsErrorRedirected && ReferenceEquals(error, Console.Error);
    private TimeSpan _lastDrawn = TimeSpan.FromDays(-1);
    private string _last = "";

    public void Report(int done, int total)
    {
        TimeSpan now = _clock.Elapsed;
        bool finished = done == total;
        if (!finished && now - _lastDrawn < (_interactive ? TimeSpan.FromMilliseconds(100) : TimeSpan.FromSeconds(5))) return;
        _lastDrawn = now;
        double rate = done / Math.Max(now.TotalSeconds, 1e-9);
        TimeSpan eta = rate > 0 ? TimeSpan.FromSeconds((total - done) / rate) : TimeSpan.Zero;
        _last = $"{done}/{total} {unit} ({100.0 * done / Math.Max(total, 1):F0}%), {rate:F1} {unit}/s, ETA {eta:mm\\:ss}";
        if (_interactive) error.Write("\r" + _last.PadRight(70));
        else error.WriteLine(_last);
    }

    public void Done()
    {
        if (_interactive && _last.Length > 0) error.WriteLine();
    }
}
