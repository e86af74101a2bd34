using System.Runtime.CompilerServices;
using System.Text;

namespace Tune.Trainer.Data;

/// <summary>
/// The files of a directory that its include and exclude globs select, in ordinal order of their '/'-separated
/// relative paths, so every machine reads them in the same order. Excluded directories are not entered; version
/// control directories (.git, .hg, .svn) never are, nor are symbolic links to directories (they can loop).
/// </summary>
internal sealed class SourceTree
{
    private static readonly HashSet<string> VersionControl = new(StringComparer.Ordinal) { ".git", ".hg", ".svn" };

    // git's test for binary content: a NUL byte in the first 8000 bytes.
    private const int BinaryProbeBytes = 8000;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly string _root;
    private readonly Glob[] _include;
    private readonly Glob[] _exclude;

    public SourceTree(string root, IEnumerable<string> include, IEnumerable<string> exclude)
    {
        _root = Path.GetFullPath(root);
        _include = [.. include.Select(p => new Glob(p))];
        _exclude = [.. exclude.Select(p => new Glob(p))];
    }

    /// <summary>Relative paths of the selected files, '/'-separated, sorted ordinally.</summary>
    public List<string> Files()
    {
        var files = new List<string>();
        Walk(new DirectoryInfo(_root), "", files);
        files.Sort(StringComparer.Ordinal);
        return files;
    }

    /// <summary>Every selected text file as one document; binary and non-UTF-8 files are reported and skipped.</summary>
    public async IAsyncEnumerable<TrainingRecord> ReadAsync(Action<string> skippedBinary, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        foreach (string relative in Files())
        {
            string path = Path.Combine(_root, relative);
            byte[] bytes = await File.ReadAllBytesAsync(path, cancellationToken);
            if (TryDecodeText(bytes) is { } text) yield return new TextRecord(new RecordOrigin(path), text);
            else skippedBinary(path);
        }
    }

    /// <summary>The file as text, without a UTF-8 byte order mark; null when it holds a NUL byte early on or is not UTF-8.</summary>
    internal static string? TryDecodeText(byte[] bytes)
    {
        if (bytes.AsSpan(0, Math.Min(bytes.Length, BinaryProbeBytes)).Contains((byte)0)) return null;
        ReadOnlySpan<byte> body = bytes.AsSpan().StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]) ? bytes.AsSpan(3) : bytes;
        try { return StrictUtf8.GetString(body); }
        catch (DecoderFallbackException) { return null; }
    }

    private void Walk(DirectoryInfo directory, string relative, List<string> files)
    {
        foreach (FileSystemInfo entry in directory.EnumerateFileSystemInfos())
        {
            string path = relative.Length == 0 ? entry.Name : relative + "/" + entry.Name;
            if (entry is DirectoryInfo child)
            {
                if (VersionControl.Contains(entry.Name) || entry.LinkTarget is not null) continue;
                if (_exclude.Any(g => g.Matches(path) || g.Matches(path + "/"))) continue;
                Walk(child, path, files);
            }
            else if (_include.Any(g => g.Matches(path)) && !_exclude.Any(g => g.Matches(path)))
            {
                files.Add(path);
            }
        }
    }
}
