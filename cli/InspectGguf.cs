using System.Globalization;
using Tune.Formats;

namespace Tune.Cli;

/// <summary>`tune inspect FILE.gguf`: the header, every metadata key (long arrays summarised) and the tensor table.</summary>
internal static class InspectGguf
{
    private const int ArrayItemsShown = 5;
    private const int StringCharsShown = 120;

    public static void Describe(string path, TextWriter o)
    {
        using GgufFile file = GgufFile.Open(path);
        GgufHeader h = file.Header;
        o.WriteLine($"file           {Path.GetFullPath(path)} ({file.Length:N0} bytes)");
        o.WriteLine($"gguf           v{h.Version}, {h.Metadata.Count} metadata keys, {h.Tensors.Count} tensors, alignment {h.Alignment}, data at {h.DataOffset:N0}");
        o.WriteLine();
        int keyWidth = h.Metadata.Select(kv => kv.Key.Length).DefaultIfEmpty(0).Max();
        foreach (var (key, value) in h.Metadata)
            o.WriteLine($"{key.PadRight(keyWidth)}  {value.Describe(),-9} {Render(value)}");
        o.WriteLine();

        int nameWidth = Math.Max(4, h.Tensors.Select(t => t.Name.Length).DefaultIfEmpty(0).Max());
        o.WriteLine($"{"name".PadRight(nameWidth)}  {"type",-7} {"ne",-24} {"bytes",15}");
        foreach (GgufTensorInfo t in h.Tensors)
            o.WriteLine($"{t.Name.PadRight(nameWidth)}  {t.Type.Name(),-7} {"{" + string.Join(", ", t.Dimensions) + "}",-24} {t.ByteLength,15:N0}");
        string byType = string.Join(", ", h.Tensors.GroupBy(t => t.Type).OrderBy(g => g.Key)
            .Select(g => $"{g.Key.Name()} {g.Count()} ({g.Sum(t => t.ByteLength):N0} bytes)"));
        o.WriteLine($"{h.Tensors.Count} tensors, {h.Tensors.Sum(t => t.ElementCount):N0} elements: {byType}");
    }

    private static string Render(GgufValue value) => value.Value switch
    {
        string s => Quote(s),
        string[] a => Summarise(a.Length, a.Take(ArrayItemsShown).Select(Quote)),
        Array a => Summarise(a.Length, a.Cast<object>().Take(ArrayItemsShown).Select(Scalar)),
        var v => Scalar(v),
    };

    private static string Summarise(int count, IEnumerable<string> first) =>
        $"[{string.Join(", ", first)}{(count > ArrayItemsShown ? $", … ({count:N0} items)" : "")}]";

    private static string Scalar(object v) => v switch
    {
        bool b => b ? "true" : "false",
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };

    private static string Quote(string s)
    {
        string shown = s.Length > StringCharsShown ? s[..StringCharsShown] + $"… ({s.Length:N0} chars)" : s;
        return "\"" + shown.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n").Replace("\r", "\\r").Replace("\t", "\\t") + "\"";
    }
}
