namespace Tune.Formats;

/// <summary>
/// One GGUF metadata value: a scalar, a string or a flat array of one element type. The stored type is explicit
/// (factories named after it) because llama.cpp checks it exactly: a count written as i32 where u32 is read fails.
/// <see cref="Value"/> holds the CLR type of the stored type (uint for UInt32, string[] for an array of strings, …).
/// </summary>
public sealed record GgufValue
{
    private static readonly Dictionary<Type, GgufValueType> ClrTypes = new()
    {
        [typeof(byte)] = GgufValueType.UInt8, [typeof(sbyte)] = GgufValueType.Int8,
        [typeof(ushort)] = GgufValueType.UInt16, [typeof(short)] = GgufValueType.Int16,
        [typeof(uint)] = GgufValueType.UInt32, [typeof(int)] = GgufValueType.Int32,
        [typeof(ulong)] = GgufValueType.UInt64, [typeof(long)] = GgufValueType.Int64,
        [typeof(float)] = GgufValueType.Float32, [typeof(double)] = GgufValueType.Float64,
        [typeof(bool)] = GgufValueType.Bool, [typeof(string)] = GgufValueType.String,
    };

    private GgufValue(GgufValueType type, GgufValueType? elementType, object value)
    {
        Type = type;
        ElementType = elementType;
        Value = value;
    }

    public GgufValueType Type { get; }

    /// <summary>The element type of an array; null for scalars and strings.</summary>
    public GgufValueType? ElementType { get; }

    public object Value { get; }

    public static GgufValue UInt8(byte v) => new(GgufValueType.UInt8, null, v);
    public static GgufValue Int8(sbyte v) => new(GgufValueType.Int8, null, v);
    public static GgufValue UInt16(ushort v) => new(GgufValueType.UInt16, null, v);
    public static GgufValue Int16(short v) => new(GgufValueType.Int16, null, v);
    public static GgufValue UInt32(uint v) => new(GgufValueType.UInt32, null, v);
    public static GgufValue Int32(int v) => new(GgufValueType.Int32, null, v);
    public static GgufValue UInt64(ulong v) => new(GgufValueType.UInt64, null, v);
    public static GgufValue Int64(long v) => new(GgufValueType.Int64, null, v);
    public static GgufValue Float32(float v) => new(GgufValueType.Float32, null, v);
    public static GgufValue Float64(double v) => new(GgufValueType.Float64, null, v);
    public static GgufValue Bool(bool v) => new(GgufValueType.Bool, null, v);
    public static GgufValue String(string v) => new(GgufValueType.String, null, v);

    /// <summary>An array whose element type is that of <typeparamref name="T"/> (int[] → INT32 elements, string[] → STRING …).</summary>
    public static GgufValue Array<T>(T[] values) where T : notnull =>
        ClrTypes.TryGetValue(typeof(T), out GgufValueType element)
            ? new(GgufValueType.Array, element, values)
            : throw new ArgumentException($"{typeof(T).Name} is not a GGUF array element type", nameof(values));

    /// <summary>Number of elements of an array value.</summary>
    public int Count => Value is System.Array a ? a.Length : throw new InvalidOperationException($"a {Type} value is not an array");

    /// <summary>The value as <typeparamref name="T"/>, which must be its exact stored type (uint, string, int[] …).</summary>
    public T As<T>() where T : notnull =>
        Value is T v ? v : throw new InvalidDataException($"is {Describe()}, not {DescribeClr(typeof(T))}");

    /// <summary>The stored type as llama.cpp names it in messages: u32, f32, str, arr[i32] …</summary>
    public string Describe() => Type == GgufValueType.Array ? $"arr[{ShortName(ElementType!.Value)}]" : ShortName(Type);

    internal static GgufValue FromStored(GgufValueType type, GgufValueType? elementType, object value) => new(type, elementType, value);

    private static string DescribeClr(Type t) =>
        t.IsArray && ClrTypes.TryGetValue(t.GetElementType()!, out var e) ? $"arr[{ShortName(e)}]"
        : ClrTypes.TryGetValue(t, out var s) ? ShortName(s) : t.Name;

    private static string ShortName(GgufValueType t) => t switch
    {
        GgufValueType.UInt8 => "u8", GgufValueType.Int8 => "i8", GgufValueType.UInt16 => "u16", GgufValueType.Int16 => "i16",
        GgufValueType.UInt32 => "u32", GgufValueType.Int32 => "i32", GgufValueType.UInt64 => "u64", GgufValueType.Int64 => "i64",
        GgufValueType.Float32 => "f32", GgufValueType.Float64 => "f64", GgufValueType.Bool => "bool", GgufValueType.String => "str",
        _ => "arr",
    };
}
