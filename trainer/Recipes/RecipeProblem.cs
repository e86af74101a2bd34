namespace Tune.Trainer.Recipes;

/// <summary>
/// One thing wrong with a recipe: the dotted key (<c>lora.rank</c>, <c>data.train.0.path</c>, the form
/// <c>--set</c> takes), the line of the file that gave it (null for a default or a <c>--set</c>), and what is wrong.
/// </summary>
public sealed record RecipeProblem(string Key, long? Line, string Message, bool FromOverride = false)
{
    public string Describe(string file)
    {
        string where = Line is { } line ? $"{file}:{line}" : file;
        string key = Key.Length == 0 ? "" : FromOverride ? $" --set {Key}:" : $" {Key}:";
        return $"{where}:{key} {Message}";
    }
}
