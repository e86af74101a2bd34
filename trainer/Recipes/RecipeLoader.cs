using YamlDotNet.Core;

namespace Tune.Trainer.Recipes;

/// <summary>
/// Reads a recipe: YAML into <see cref="Recipe"/> (unknown keys rejected), then the <c>--set</c> overrides, then
/// derived defaults, then validation. Every problem becomes a <see cref="RecipeException"/> naming the file, the line
/// where the file gives one, and the dotted key.
/// </summary>
public static class RecipeLoader
{
    public static Recipe Load(string path, IEnumerable<string>? overrides = null)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RecipeException(path, [new RecipeProblem("", null, e.Message)], e);
        }
        return Parse(text, path, overrides);
    }

    /// <summary>Reads recipe text; <paramref name="file"/> names it in errors and gives output.dir its default.</summary>
    public static Recipe Parse(string yaml, string file, IEnumerable<string>? overrides = null)
    {
        RecipeKeyIndex index;
        try { index = new RecipeKeyIndex(yaml); }
        catch (YamlException e)
        {
            throw new RecipeException(file, [new RecipeProblem("", e.Start.Line, $"not valid YAML: {e.Message}")], e);
        }
        Recipe? read;
        try { read = RecipeYaml.Deserializer.Deserialize<Recipe?>(yaml); }
        catch (YamlException e)
        {
            throw new RecipeException(file, [Explain(e, yaml, index)], e);
        }
        Recipe recipe = read ?? new Recipe();

        var problems = new List<RecipeProblem>();
        var overridden = new HashSet<string>(StringComparer.Ordinal);
        RecipeOverrides.Apply(recipe, overrides ?? [], problems, overridden);
        if (problems.Count > 0) throw new RecipeException(file, problems);

        RecipeProblem At(string key, string message) =>
            overridden.Any(k => key == k || key.StartsWith(k + ".", StringComparison.Ordinal))
                ? new RecipeProblem(key, null, message, FromOverride: true)
                : new RecipeProblem(key, index.LineOf(key), message);

        // Validation reads every section, so values left empty are reported first, on their own.
        problems.AddRange(RecipeNulls.Find(recipe).Select(key => At(key, $"has no value; give {Expected(key)} or remove the key")));
        if (problems.Count > 0) throw new RecipeException(file, problems);

        if (recipe.Output.Dir.Length == 0)
            recipe = recipe with { Output = recipe.Output with { Dir = Path.Combine("out", Path.GetFileNameWithoutExtension(file)) } };

        problems.AddRange(RecipeValidator.Validate(recipe).Select(p => At(p.Key, p.Message)));
        if (problems.Count > 0) throw new RecipeException(file, problems);
        return recipe;
    }

    /// <summary>The recipe as YAML in the loader's own dialect: what a run saves next to its checkpoints.</summary>
    public static string ToYaml(Recipe recipe) => RecipeYaml.Serializer.Serialize(recipe);

    private static RecipeProblem Explain(YamlException e, string yaml, RecipeKeyIndex index)
    {
        long line = e.Start.Line;
        string key = index.PathAt(e.Start) ?? "";
        string message = e.Message;
        if (message.StartsWith("Property '", StringComparison.Ordinal) && message.Contains("' not found on type", StringComparison.Ordinal))
            return new RecipeProblem(key, line, RecipeSchema.UnknownKey(key));
        if (message.StartsWith("Encountered duplicate key", StringComparison.Ordinal))
            return new RecipeProblem(key, line, "given twice");
        string value = e.End.Index > e.Start.Index && e.End.Index <= yaml.Length
            ? yaml[(int)e.Start.Index..(int)e.End.Index].Trim()
            : "";
        return new RecipeProblem(key, line, value.Length == 0 ? $"expected {Expected(key)}" : $"expected {Expected(key)}, got \"{value}\"");
    }

    private static string Expected(string key) =>
        key.Length == 0 ? $"a mapping of sections ({string.Join(", ", RecipeSchema.KeysOf("")!)})"
        : RecipeSchema.TypeOf(key) is { } type ? RecipeSchema.Describe(type) : "something else";
}
