using System.Text.Json;
using System.Text.Json.Serialization;

namespace Tune.Quantize;

/// <summary>One tensor as written: its type, bits per weight and the error of its weights against the input.</summary>
/// <param name="RelativeRmsError">‖x − q(x)‖ / ‖x‖ over the tensor, x the input weights as float32 (0 for copied tensors).</param>
public sealed record TensorReport(string Name, string InputType, string Type, long[] Dimensions, long Bytes, double BitsPerWeight, double RelativeRmsError);

/// <summary>What `tune quantize` wrote.</summary>
public sealed record QuantizeReport(string Input, string Output, string Mix, long FileSize, double Seconds, double BitsPerWeight, IReadOnlyList<TensorReport> Tensors)
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static QuantizeReport FromJson(string json) =>
        JsonSerializer.Deserialize<QuantizeReport>(json, Json) ?? throw new InvalidDataException("the report is JSON null");
}
