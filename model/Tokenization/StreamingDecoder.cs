using System.Text;

namespace Tune.Model.Tokenization;

/// <summary>
/// Turns generated ids into text one id at a time. A BPE token can hold part of a UTF-8 sequence ("日本語 🦙" ends
/// in tokens of one or two bytes of the emoji), and decoding such a token alone gives U+FFFD. The bytes go through
/// one persistent UTF-8 decoder instead, which holds an incomplete sequence until the token that completes it.
/// Not thread-safe: one instance per generated sequence.
/// </summary>
public sealed class StreamingDecoder(DeepSeekTokenizer tokenizer, bool skipSpecial)
{
    private readonly Decoder _utf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false).GetDecoder();
    private char[] _chars = new char[64];

    /// <summary>The text that <paramref name="id"/> completes; empty while a character is still incomplete.</summary>
    public string Append(int id) =>
        skipSpecial && tokenizer.IsSpecial(id) ? "" : Decode(tokenizer.TokenBytes(id), flush: false);

    /// <summary>Ends the stream: bytes of a character that never completed come out as U+FFFD.</summary>
    public string Flush() => Decode([], flush: true);

    private string Decode(ReadOnlySpan<byte> bytes, bool flush)
    {
        int needed = _utf8.GetCharCount(bytes, flush);
        if (needed > _chars.Length) _chars = new char[Math.Max(needed, _chars.Length * 2)];
        int written = _utf8.GetChars(bytes, _chars, flush);
        return new string(_chars, 0, written);
    }
}
