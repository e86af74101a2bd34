using System.Runtime.InteropServices;

namespace Tune.Formats;

/// <summary>
/// Starts the kernel writing a file's dirty pages to disk as they accumulate (Linux sync_file_range), so that the
/// flush to disk at the end of a multi-gigabyte write waits for the last stretch only, not for all of it.
/// </summary>
internal sealed partial class WriteBehind(Stream stream)
{
    private const long Stretch = 64 << 20;
    private const uint SyncFileRangeWrite = 2;

    private readonly FileStream? _file = OperatingSystem.IsLinux() ? stream as FileStream : null;
    private long _started;

    public void Advance()
    {
        if (_file is null || _file.Position - _started < Stretch) return;
        _file.Flush(flushToDisk: false);
        long end = _file.Position;
        // Advice only: if the kernel refuses, the final flush does all the work, as it would without this.
        _ = SyncFileRange(_file.SafeFileHandle.DangerousGetHandle().ToInt32(), _started, end - _started, SyncFileRangeWrite);
        _started = end;
    }

    [LibraryImport("libc", EntryPoint = "sync_file_range")]
    private static partial int SyncFileRange(int fd, long offset, long count, uint flags);
}
