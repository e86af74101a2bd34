using System.Text.Json;

namespace Tune.Trainer.Training;

/// <summary>
/// Where a run stands, saved with each checkpoint: the next optimiser step and the next data row. With the adapter
/// and the optimiser state beside it, that is all a resumed run needs to continue exactly: the learning rate is a
/// function of the step, and dropout is seeded per step. Ranks: how many ranks the run has (1: one process); checkpoints
/// written before ranks existed have none, and were written by one process.
/// </summary>
public sealed record TrainerState(int Step, long NextRow, string DataFingerprint, int Ranks = 1)
{
    public const string FileName = "trainer_state.json";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public void Save(string directory) =>
        File.WriteAllText(Path.Combine(directory, FileName), JsonSerializer.Serialize(this, Json) + "\n");

    public static TrainerState Load(string directory)
    {
        string path = Path.Combine(directory, FileName);
        try
        {
            return JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(path), Json)
                   ?? throw new FormatException($"{path}: empty");
        }
        catch (JsonException e)
        {
            throw new FormatException($"{path}: not a trainer state: {e.Message}", e);
        }
    }
}
