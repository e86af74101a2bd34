namespace Tune.Trainer.Data;

/// <summary>A data row the pipeline cannot use: names the file, the line or row, and the field.</summary>
public sealed class DataFormatException(RecordOrigin origin, string? field, string problem, Exception? inner = null)
    : FormatException(field is null ? $"{origin}: {problem}" : $"{origin}: {field}: {problem}", inner)
{
    public RecordOrigin Origin { get; } = origin;

    public string? Field { get; } = field;
}
