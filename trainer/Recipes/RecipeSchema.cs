using System.Collections;
using System.Globalization;
using System.Reflection;

namespace Tune.Trainer.Recipes;

/// <summary>
/// The recipe's key tree, read from the records themselves: what a dotted key names, what type its value has, and
/// what keys a section allows. Used to apply <c>--set</c> and to explain errors.
/// </summary>
internal static class RecipeSchema
{
    /// <summary>The type a dotted key holds, or null when no such key exists.</summary>
    public static Type? TypeOf(string path)
    {
        Type type = typeof(Recipe);
        foreach (string segment in Segments(path))
        {
            Type? next = Step(type, segment);
            if (next is null) return null;
            type = next;
        }
        return type;
    }

    /// <summary>The keys a record section allows, or null when the path is not a section.</summary>
    public static IReadOnlyList<string>? KeysOf(string path)
    {
        Type? type = path.Length == 0 ? typeof(Recipe) : TypeOf(path);
        return type is not null && IsSection(type) ? [.. Properties(type).Select(RecipeYaml.KeyOf)] : null;
    }

    /// <summary>Why a dotted key is unknown, listing what its section does allow.</summary>
    public static string UnknownKey(string path)
    {
        string[] segments = [.. Segments(path)];
        for (int n = segments.Length - 1; n >= 0; n--)
        {
            string parent = string.Join('.', segments[..n]);
            if (KeysOf(parent) is { } keys)
                return $"unknown key; {(parent.Length == 0 ? "a recipe" : parent)} has {string.Join(", ", keys)}";
            if (TypeOf(parent) is { } type) return $"unknown key; {parent} is {Describe(type)}";
        }
        return "unknown key";
    }

    /// <summary>In words, what a value of the type looks like: for "expected ..." messages.</summary>
    public static string Describe(Type type)
    {
        Type bare = Nullable.GetUnderlyingType(type) ?? type;
        string described = bare switch
        {
            _ when bare == typeof(int) || bare == typeof(long) => "an integer",
            _ when bare == typeof(double) => "a number",
            _ when bare == typeof(bool) => "true or false",
            _ when bare == typeof(string) => "a string",
            _ when bare.IsEnum => "one of " + string.Join(", ", Enum.GetNames(bare).Select(RecipeYaml.Naming.Apply)),
            _ when bare.IsArray => $"a list of {Plural(bare.GetElementType()!)}",
            _ when IsDictionary(bare) => "a mapping",
            _ => "a section of keys",
        };
        return bare != type ? described + " (or null)" : described;
    }

    public static IEnumerable<string> Segments(string path) => path.Split('.');

    /// <summary>The object a key's parent holds, walking records, lists and mappings of a recipe.</summary>
    public static object? Child(object owner, string segment) => owner switch
    {
        Array array when int.TryParse(segment, NumberStyles.None, CultureInfo.InvariantCulture, out int i) && i < array.Length => array.GetValue(i),
        IDictionary dictionary when DictionaryKey(dictionary.GetType(), segment) is { } key => dictionary.Contains(key) ? dictionary[key] : null,
        _ when IsSection(owner.GetType()) => Property(owner.GetType(), segment)?.GetValue(owner),
        _ => null,
    };

    public static PropertyInfo? Property(Type section, string key) =>
        Properties(section).FirstOrDefault(p => RecipeYaml.KeyOf(p) == key);

    public static object? DictionaryKey(Type dictionary, string segment)
    {
        Type keyType = dictionary.GetGenericArguments()[0];
        if (keyType == typeof(string)) return segment;
        return keyType == typeof(int) && int.TryParse(segment, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int k) ? k : null;
    }

    public static bool IsDictionary(Type type) => type.IsGenericType && type.GetGenericTypeDefinition() == typeof(Dictionary<,>);

    private static Type? Step(Type type, string segment)
    {
        if (type.IsArray) return int.TryParse(segment, NumberStyles.None, CultureInfo.InvariantCulture, out _) ? type.GetElementType() : null;
        if (IsDictionary(type)) return DictionaryKey(type, segment) is null ? null : type.GetGenericArguments()[1];
        return IsSection(type) ? Property(type, segment)?.PropertyType : null;
    }

    private static bool IsSection(Type type) => type.IsClass && type.Namespace == typeof(Recipe).Namespace && type.Name.EndsWith("Recipe", StringComparison.Ordinal);

    private static IEnumerable<PropertyInfo> Properties(Type section) =>
        section.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite && p.GetIndexParameters().Length == 0);

    private static string Plural(Type element) => element == typeof(string) ? "strings"
        : element == typeof(double) ? "numbers" : element == typeof(int) ? "integers" : "sections";
}
