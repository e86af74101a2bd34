namespace Tune.Trainer.Data;

/// <summary>
/// Where a record came from, for error messages: a JSONL line (1-based, as editors count), a Parquet row (0-based,
/// as pyarrow and pandas count, over the whole file) or a whole source file.
/// </summary>
public sealed record RecordOrigin(string File, long? Line = null, long? Row = null)
{
    public override string ToString() =>
        Line is { } line ? $"{File}:{line}" : Row is { } row ? $"{File}: row {row}" : File;
}
