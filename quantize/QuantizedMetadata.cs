using Tune.Formats;

namespace Tune.Quantize;

/// <summary>
/// The metadata llama_model_quantize writes: every input key in input order, except that
/// general.quantization_version and general.file_type are set last (gguf_set_val_u32 removes a key and appends it)
/// and the split.* keys of sharded inputs are removed.
/// </summary>
public static class QuantizedMetadata
{
    public const string QuantizationVersionKey = "general.quantization_version";
    public const string FileTypeKey = "general.file_type";

    /// <summary>GGML_QNT_VERSION.</summary>
    public const uint QuantizationVersion = 2;

    private static readonly string[] Removed = [QuantizationVersionKey, FileTypeKey, "split.no", "split.count", "split.tensors.count"];

    public static IReadOnlyList<KeyValuePair<string, GgufValue>> For(IReadOnlyList<KeyValuePair<string, GgufValue>> input, QuantizationMix mix) =>
    [
        .. input.Where(kv => !Removed.Contains(kv.Key)),
        new(QuantizationVersionKey, GgufValue.UInt32(QuantizationVersion)),
        new(FileTypeKey, GgufValue.UInt32(mix.FileType)),
    ];
}
