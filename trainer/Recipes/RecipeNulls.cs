using System.Collections;

namespace Tune.Trainer.Recipes;

/// <summary>
/// Keys the file left without a value (<c>lora:</c> alone, <c>- </c> in a list): YAML null where the recipe needs a
/// section, list or string. Nullable numbers may be null; they mean "the default".
/// </summary>
internal static class RecipeNulls
{
    public static List<string> Find(Recipe recipe)
    {
        var keys = new List<string>();
        Walk(recipe, "", keys);
        return keys;
    }

    private static void Walk(object section, string path, List<string> keys)
    {
        foreach (string key in RecipeSchema.KeysOf(path) ?? [])
        {
            string child = path.Length == 0 ? key : path + "." + key;
            object? value = RecipeSchema.Child(section, key);
            if (value is null)
            {
                if (Nullable.GetUnderlyingType(RecipeSchema.TypeOf(child)!) is null) keys.Add(child);
                continue;
            }
            if (value is IList list)
            {
                for (int i = 0; i < list.Count; i++)
                {
                    string item = $"{child}.{i}";
                    if (list[i] is null) keys.Add(item);
                    else if (RecipeSchema.KeysOf(item) is not null) Walk(list[i]!, item, keys);
                }
            }
            else if (value is IDictionary dictionary)
            {
                foreach (DictionaryEntry entry in dictionary)
                    if (entry.Value is null) keys.Add($"{child}.{entry.Key}");
            }
            else if (RecipeSchema.KeysOf(child) is not null) Walk(value, child, keys);
        }
    }
}
