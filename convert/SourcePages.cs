using System.Runtime.InteropServices;

namespace Tune.Convert;

/// <summary>
/// Drops already-converted pages of a memory-mapped checkpoint from the process. Mapped file pages count in the
/// resident set once touched, so without this converting a 30 GB checkpoint would end with 30 GB "in use"; the page
/// cache keeps them, and touching them again simply maps them back.
/// </summary>
internal static unsafe partial class SourcePages
{
    private const int MadvDontNeed = 4;
    private static readonly long PageSize = Environment.SystemPageSize;

    public static void Release(byte* start, long length)
    {
        if (!OperatingSystem.IsLinux() || length <= 0) return;
        long first = (long)start / PageSize * PageSize;
        long end = ((long)start + length + PageSize - 1) / PageSize * PageSize;
        // Advice only: if the kernel refuses, the pages simply stay mapped.
        _ = Madvise((void*)first, (nuint)(end - first), MadvDontNeed);
    }

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(void* address, nuint length, int advice);
}
