namespace Tune.Trainer.Recipes;

/// <summary>A recipe that cannot be used; the message has one line per problem, each naming file, line and key.</summary>
public sealed class RecipeException(string file, IReadOnlyList<RecipeProblem> problems, Exception? inner = null)
    : FormatException(string.Join(Environment.NewLine, problems.Select(p => p.Describe(file))), inner)
{
    public string File { get; } = file;

    public IReadOnlyList<RecipeProblem> Problems { get; } = problems;
}
