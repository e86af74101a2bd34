namespace Tune.Model.Tokenization;

/// <summary>
/// GPT-2's byte-to-character table (<c>bytes_to_unicode</c>), which byte-level BPE vocabularies are written in:
/// printable Latin-1 bytes stand for themselves, the other 68 bytes for U+0100 onwards in byte order (space is 'Ġ').
/// </summary>
internal static class ByteLevelAlphabet
{
    private static readonly short[] ByteOfChar = BuildInverse();

    /// <summary>The byte that <paramref name="c"/> stands for, or -1 when it is not a byte-level character.</summary>
    public static int ByteOf(char c) => c < ByteOfChar.Length ? ByteOfChar[c] : -1;

    private static short[] BuildInverse()
    {
        static bool StandsForItself(int b) => b is >= '!' and <= '~' or >= '¡' and <= '¬' or >= '®' and <= 'ÿ';

        var inverse = new short[256 + 68];
        Array.Fill(inverse, (short)-1);
        int shifted = 0;
        for (int b = 0; b < 256; b++)
            inverse[StandsForItself(b) ? b : 256 + shifted++] = (short)b;
        return inverse;
    }
}
