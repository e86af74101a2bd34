using System.Text;
using Tune.Model.Tokenization;

namespace Tune.Tests.Tokenization;

public sealed class StreamingDecoderTests
{
    [Theory]
    [InlineData("日本語 🦙")]
    [InlineData("👩‍👩‍👧‍👦 and 𐐷 and e\u0301")]
    [InlineData("plain ascii")]
    public void OneIdAtATimeNeverYieldsAReplacementCharacterAndConcatenatesToTheOriginal(string text)
    {
        DeepSeekTokenizer tokenizer = LoadedTokenizers.V2;
        int[] ids = tokenizer.EncodeText(text);
        var decoder = new StreamingDecoder(tokenizer, skipSpecial: false);
        var pieces = ids.Select(decoder.Append).Append(decoder.Flush()).ToList();

        Assert.DoesNotContain(pieces, piece => piece.Contains('\uFFFD'));
        Assert.Equal(text, string.Concat(pieces));
    }

    [Fact]
    public void TheLlamaEmojiIsSplitAcrossTokensAndWaitsForItsLastByte()
    {
        DeepSeekTokenizer tokenizer = LoadedTokenizers.V2;
        int[] ids = tokenizer.EncodeText("🦙");
        Assert.True(ids.Length > 1, "the test needs an emoji that spans tokens");
        var decoder = new StreamingDecoder(tokenizer, skipSpecial: false);
        Assert.All(ids[..^1], id => Assert.Equal("", decoder.Append(id)));
        Assert.Equal("🦙", decoder.Append(ids[^1]));
        Assert.Equal("", decoder.Flush());
    }

    [Fact]
    public void SpecialTokensAreSkippedOnRequestAndAnUnfinishedCharacterFlushesAsReplacement()
    {
        DeepSeekTokenizer tokenizer = LoadedTokenizers.V2;
        int[] emoji = tokenizer.EncodeText("🦙");
        var decoder = new StreamingDecoder(tokenizer, skipSpecial: true);
        var text = new StringBuilder();
        foreach (int id in (int[])[tokenizer.BosId, .. tokenizer.EncodeText("ok "), emoji[0]]) text.Append(decoder.Append(id));
        Assert.Equal("ok ", text.ToString());
        Assert.Equal("\uFFFD", decoder.Flush());
    }
}
