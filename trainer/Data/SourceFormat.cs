namespace Tune.Trainer.Data;

/// <summary>How a data source's files are read.</summary>
public enum SourceFormat
{
    /// <summary>By the path: <c>.jsonl</c>/<c>.json</c> is JSONL, <c>.parquet</c> is Parquet, a directory is source files.</summary>
    Auto,

    /// <summary>One JSON object per line.</summary>
    Jsonl,

    /// <summary>Apache Parquet, read one row group at a time.</summary>
    Parquet,

    /// <summary>Every text file is one <see cref="RecordKind.Text"/> document; binary files are skipped.</summary>
    Files,
}
