using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Tune.Trainer.Recipes;

/// <summary>
/// Where each key of a recipe file is, by dotted key path (sequence items by index: <c>data.train.0.path</c>), so
/// errors found after deserialization, and YamlDotNet's own, can name both the key and its line. Built from the
/// parser's events rather than a node tree, which would reject a duplicate key before it could be named.
/// </summary>
internal sealed class RecipeKeyIndex
{
    private readonly Dictionary<string, long> _lines = new(StringComparer.Ordinal);
    private readonly List<(long Index, string Path)> _nodes = [];

    /// <summary>Parses the YAML; a syntax error is a <see cref="YamlException"/> with its position.</summary>
    public RecipeKeyIndex(string yaml)
    {
        var parser = new Parser(new StringReader(yaml));
        var open = new Stack<Frame>();
        int documents = 0;
        while (parser.MoveNext())
        {
            ParsingEvent current = parser.Current!;
            switch (current)
            {
                case DocumentStart when ++documents > 1:
                    throw new YamlException(current.Start, current.End, "a recipe is one YAML document");
                case MappingStart or SequenceStart:
                    string path = Value(open, current);
                    open.Push(new Frame(path, current is MappingStart));
                    break;
                case MappingEnd or SequenceEnd:
                    open.Pop();
                    if (open.Count > 0) open.Peek().ValueDone();
                    break;
                case Scalar scalar when open.Count > 0 && open.Peek().ExpectsKey:
                    Frame mapping = open.Peek();
                    mapping.Key = Join(mapping.Path, scalar.Value);
                    _lines.TryAdd(mapping.Key, scalar.Start.Line);
                    _nodes.Add((scalar.Start.Index, mapping.Key));
                    mapping.ExpectsKey = false;
                    break;
                case Scalar or AnchorAlias:
                    Value(open, current);
                    if (open.Count > 0) open.Peek().ValueDone();
                    break;
            }
        }
        // A mapping value starts where its first key does; the deeper path sorts last so PathAt names the key.
        _nodes.Sort((a, b) => a.Index != b.Index ? a.Index.CompareTo(b.Index) : a.Path.Length.CompareTo(b.Path.Length));
    }

    public long? LineOf(string path) => _lines.TryGetValue(path, out long line) ? line : null;

    /// <summary>The key whose key or value starts at <paramref name="mark"/>, else the last one that starts before it.</summary>
    public string? PathAt(Mark mark)
    {
        string? path = null;
        foreach (var (index, nodePath) in _nodes)
        {
            if (index > mark.Index) break;
            path = nodePath;
        }
        return path;
    }

    /// <summary>Records a value node under the key or item it belongs to, and returns that path.</summary>
    private string Value(Stack<Frame> open, ParsingEvent node)
    {
        if (open.Count == 0) return "";
        Frame parent = open.Peek();
        string path = parent.IsMapping ? parent.Key : Join(parent.Path, parent.Items.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (!parent.IsMapping) _lines.TryAdd(path, node.Start.Line);
        _nodes.Add((node.Start.Index, path));
        return path;
    }

    private static string Join(string path, string key) => path.Length == 0 ? key : path + "." + key;

    private sealed class Frame(string path, bool isMapping)
    {
        public string Path { get; } = path;

        public bool IsMapping { get; } = isMapping;

        public bool ExpectsKey { get; set; } = isMapping;

        public string Key { get; set; } = path;

        public int Items { get; private set; }

        public void ValueDone()
        {
            if (IsMapping) ExpectsKey = true;
            else Items++;
        }
    }
}
