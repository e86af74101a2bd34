using System.Runtime.InteropServices;

namespace Tune.Formats;

/// <summary>
/// Pages of a read-only file mapping that the process has copied and will not read again soon: on Linux they leave
/// its resident set (madvise MADV_DONTNEED; the data stays in the file and the page cache, and a later read maps it
/// back), so that a copy made at load does not count twice.
/// </summary>
public static unsafe partial class MappedPages
{
    private const int DontNeed = 4;

    /// <summary>Releases the whole pages inside [<paramref name="start"/>, + <paramref name="length"/>).</summary>
    public static void Release(byte* start, long length)
    {
        if (!OperatingSystem.IsLinux() || length <= 0) return;
        long page = Environment.SystemPageSize;
        long first = ((long)start + page - 1) / page * page, end = ((long)start + length) / page * page;
        // Advice only: a refusal leaves the pages resident, which costs memory, not correctness.
        if (end > first) _ = Advise((nint)first, (nuint)(end - first), DontNeed);
    }

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Advise(nint address, nuint length, int advice);
}
