using System.Collections;
using YamlDotNet.Core;

namespace Tune.Trainer.Recipes;

/// <summary>
/// <c>--set key=value</c>: dotted keys as in error messages (<c>lora.rank=8</c>, <c>data.train.0.path=x</c>), the
/// value read as YAML of the key's type (<c>lora.target_modules=[q_proj,o_proj]</c>; strings are taken as written).
/// Applied to the freshly read recipe before validation, so overrides are validated like the file.
/// </summary>
internal static class RecipeOverrides
{
    public static void Apply(Recipe recipe, IEnumerable<string> assignments, List<RecipeProblem> problems, HashSet<string> setKeys)
    {
        foreach (string assignment in assignments)
        {
            int equals = assignment.IndexOf('=');
            if (equals <= 0)
            {
                problems.Add(new RecipeProblem(assignment, null, "expected key=value", FromOverride: true));
                continue;
            }
            string key = assignment[..equals].Trim();
            string value = assignment[(equals + 1)..];
            if (Set(recipe, key, value) is { } problem) problems.Add(new RecipeProblem(key, null, problem, FromOverride: true));
            else setKeys.Add(key);
        }
    }

    /// <summary>Sets the key; returns what is wrong instead when it cannot.</summary>
    private static string? Set(Recipe recipe, string key, string value)
    {
        Type? type = RecipeSchema.TypeOf(key);
        if (type is null) return RecipeSchema.UnknownKey(key);
        string[] segments = [.. RecipeSchema.Segments(key)];
        object owner = recipe;
        for (int i = 0; i < segments.Length - 1; i++)
        {
            if (RecipeSchema.Child(owner, segments[i]) is not { } child)
                return owner is Array items ? $"{string.Join('.', segments[..i])} has {items.Length} items"
                    : $"{string.Join('.', segments[..(i + 1)])} has no such item";
            owner = child;
        }
        object? converted;
        try { converted = type == typeof(string) ? value : RecipeYaml.Deserializer.Deserialize(value, type); }
        catch (YamlException) { return $"expected {RecipeSchema.Describe(type)}, got \"{value}\""; }
        if (converted is null && Nullable.GetUnderlyingType(type) is null)
            return $"expected {RecipeSchema.Describe(type)}, got no value";

        string last = segments[^1];
        switch (owner)
        {
            case Array array when int.Parse(last, System.Globalization.CultureInfo.InvariantCulture) >= array.Length:
                return $"{string.Join('.', segments[..^1])} has {array.Length} items";
            case Array array:
                array.SetValue(converted, int.Parse(last, System.Globalization.CultureInfo.InvariantCulture));
                break;
            case IDictionary dictionary:
                dictionary[RecipeSchema.DictionaryKey(owner.GetType(), last)!] = converted;
                break;
            default:
                RecipeSchema.Property(owner.GetType(), last)!.SetValue(owner, converted);
                break;
        }
        return null;
    }
}
