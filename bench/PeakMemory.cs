namespace Tune.Bench;

/// <summary>The process's peak resident set (VmHWM), which includes file pages of the mapped checkpoint it touched.</summary>
internal static class PeakMemory
{
    public static double GiB() =>
        File.ReadLines("/proc/self/status").Where(l => l.StartsWith("VmHWM:", StringComparison.Ordinal))
            .Select(l => long.Parse(l.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[1])).First() / 1024.0 / 1024.0;
}
