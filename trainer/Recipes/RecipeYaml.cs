using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Tune.Trainer.Recipes;

/// <summary>The one YAML dialect of recipes: snake_case keys and enum values, unknown and duplicate keys rejected.</summary>
internal static class RecipeYaml
{
    public static INamingConvention Naming => UnderscoredNamingConvention.Instance;

    public static IDeserializer Deserializer { get; } = new DeserializerBuilder()
        .WithNamingConvention(Naming)
        .WithEnumNamingConvention(Naming)
        .WithDuplicateKeyChecking()
        .Build();

    public static ISerializer Serializer { get; } = new SerializerBuilder()
        .WithNamingConvention(Naming)
        .WithEnumNamingConvention(Naming)
        .Build();

    public static string KeyOf(System.Reflection.PropertyInfo property) => Naming.Apply(property.Name);
}
