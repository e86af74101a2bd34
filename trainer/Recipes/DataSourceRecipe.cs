using Tune.Trainer.Data;

namespace Tune.Trainer.Recipes;

/// <summary>One file or directory of training data.</summary>
public sealed record DataSourceRecipe
{
    /// <summary>A file, or a directory whose files <see cref="Include"/> and <see cref="Exclude"/> select.</summary>
    public string Path { get; init; } = "";

    public RecordKind Kind { get; init; } = RecordKind.Text;

    public SourceFormat Format { get; init; } = SourceFormat.Auto;

    /// <summary>Globs for a directory; empty means *.jsonl, *.parquet or every file, by format.</summary>
    public string[] Include { get; init; } = [];

    public string[] Exclude { get; init; } = [];

    /// <summary>The JSONL field or Parquet column of a text record (the-stack's is "content").</summary>
    public string TextField { get; init; } = "text";
}
