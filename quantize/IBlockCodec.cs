using Tune.Formats;

namespace Tune.Quantize;

/// <summary>
/// One ggml block format: rows are cut into blocks of <see cref="BlockSize"/> weights, each stored in
/// <see cref="BytesPerBlock"/> bytes. Codecs work on one row (or any whole number of blocks), allocate nothing and
/// are safe to call from many threads at once.
/// </summary>
public interface IBlockCodec
{
    GgmlType Type { get; }

    int BlockSize { get; }

    int BytesPerBlock { get; }

    /// <summary>
    /// Writes the blocks ggml's reference quantiser (<c>ggml_quantize_chunk</c> without importance matrix) writes,
    /// byte for byte. <paramref name="row"/> holds a multiple of <see cref="BlockSize"/> weights and
    /// <paramref name="blocks"/> exactly their bytes.
    /// </summary>
    /// <exception cref="NonFiniteWeightException">the row holds a NaN or an infinity.</exception>
    void Quantize(ReadOnlySpan<float> row, Span<byte> blocks);

    /// <summary>The weights ggml's <c>dequantize_row_*</c> reads from <paramref name="blocks"/>, bit for bit.</summary>
    void Dequantize(ReadOnlySpan<byte> blocks, Span<float> row);

    /// <summary>
    /// Σ w·x of the dequantised weights with float activations <paramref name="x"/> (float accumulation: equal to
    /// <see cref="Dequantize"/> followed by a dot product up to rounding).
    /// </summary>
    float Dot(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x);
}
