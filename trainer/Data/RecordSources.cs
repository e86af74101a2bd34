using System.Runtime.CompilerServices;
using Tune.Trainer.Recipes;

namespace Tune.Trainer.Data;

/// <summary>Opens a recipe's data source: resolves its format and, for a directory, the files its globs select.</summary>
internal static class RecordSources
{
    /// <summary>
    /// The source's records in a fixed order. <paramref name="key"/> (<c>data.train.0</c>) names the source in errors;
    /// a relative path is taken from <paramref name="baseDirectory"/>.
    /// </summary>
    public static async IAsyncEnumerable<TrainingRecord> ReadAsync(DataSourceRecipe source, string key, string baseDirectory,
        Action<string> skippedBinary, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string path = Path.GetFullPath(source.Path, baseDirectory);
        bool directory = Directory.Exists(path);
        if (!directory && !File.Exists(path)) throw new FileNotFoundException($"{key}.path: {path}: no such file or directory", path);
        SourceFormat format = Resolve(source.Format, path, directory, key);
        if (format == SourceFormat.Files && source.Kind != RecordKind.Text)
            throw new FormatException($"{key}.kind: source files are text records; for a directory of JSONL or Parquet files set {key}.format");

        if (format == SourceFormat.Files)
        {
            IAsyncEnumerable<TrainingRecord> files = directory
                ? new SourceTree(path, Include(source, "*"), source.Exclude).ReadAsync(skippedBinary, cancellationToken)
                : SingleFile(path, skippedBinary, cancellationToken);
            await foreach (TrainingRecord record in files) yield return record;
            yield break;
        }

        IEnumerable<string> paths = directory
            ? new SourceTree(path, Include(source, format == SourceFormat.Jsonl ? "*.jsonl" : "*.parquet"), source.Exclude)
                .Files().Select(relative => Path.Combine(path, relative))
            : [path];
        foreach (string file in paths)
        {
            IAsyncEnumerable<TrainingRecord> records = format == SourceFormat.Jsonl
                ? JsonlRecordReader.ReadAsync(file, source.Kind, source.TextField, cancellationToken)
                : ParquetRecordReader.ReadAsync(file, source.Kind, source.TextField, cancellationToken);
            await foreach (TrainingRecord record in records) yield return record;
        }
    }

    private static SourceFormat Resolve(SourceFormat format, string path, bool directory, string key)
    {
        if (format != SourceFormat.Auto) return format;
        if (directory) return SourceFormat.Files;
        return Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".jsonl" or ".json" or ".ndjson" => SourceFormat.Jsonl,
            ".parquet" => SourceFormat.Parquet,
            _ => throw new FormatException($"{key}.format: cannot tell the format of {path} from its name; set jsonl, parquet or files"),
        };
    }

    private static string[] Include(DataSourceRecipe source, string fallback) => source.Include.Length > 0 ? source.Include : [fallback];

    private static async IAsyncEnumerable<TrainingRecord> SingleFile(string path, Action<string> skippedBinary,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        byte[] bytes = await File.ReadAllBytesAsync(path, cancellationToken);
        if (SourceTree.TryDecodeText(bytes) is { } text) yield return new TextRecord(new RecordOrigin(path), text);
        else skippedBinary(path);
    }
}
