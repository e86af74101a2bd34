namespace Tune.Formats;

/// <summary>
/// Writes a file so that its real name only ever holds a complete file: a crash or an exception mid-write leaves the
/// previous contents (or nothing) under the real name, never a torn multi-gigabyte checkpoint.
/// </summary>
public static class AtomicFile
{
    /// <summary>
    /// Runs <paramref name="write"/> on a temporary file in the same directory (so the final rename cannot cross file
    /// systems), flushes it to disk and renames it over <paramref name="path"/>. If <paramref name="write"/> throws,
    /// the temporary file is deleted and the exception propagates. <paramref name="write"/> must not dispose the stream.
    /// </summary>
    public static void Write(string path, Action<FileStream> write)
    {
        string fullPath = System.IO.Path.GetFullPath(path);
        string directory = System.IO.Path.GetDirectoryName(fullPath)
            ?? throw new ArgumentException($"{path}: names a root, not a file", nameof(path));
        string temporary = System.IO.Path.Combine(directory, $".{System.IO.Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, fullPath, overwrite: true);
        }
        catch
        {
            DeleteQuietly(temporary);
            throw;
        }
    }

    // A failure to clean up must not hide the error that made the write fail.
    private static void DeleteQuietly(string temporary)
    {
        try { File.Delete(temporary); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
