using Tune.Serve.Engine;

namespace Tune.Tests.Serve;

public sealed class StopStringFilterTests
{
    private static (string Text, string? Stop) Run(IReadOnlyList<string> stops, params string[] pieces)
    {
        var filter = new StopStringFilter(stops);
        string text = string.Concat(pieces.Select(filter.Append)) + filter.Flush();
        return (text, filter.StopWord);
    }

    [Fact]
    public void AStopStringSplitOverPiecesIsFoundAndCut() =>
        Assert.Equal(("return x", "\n\n"), Run(["\n\n"], "return", " x\n", "\nprint"));

    [Fact]
    public void TextThatOnlyLooksLikeAStopStartIsReleased()
    {
        var filter = new StopStringFilter(["</end>"]);
        Assert.Equal("a", filter.Append("a</e"));
        Assert.Equal("</ex", filter.Append("x"));
        Assert.Equal("", filter.Append("</en"));
        Assert.Equal("</en", filter.Flush());
        Assert.Null(filter.StopWord);
    }

    [Fact]
    public void TheEarliestOfSeveralStopsWins() =>
        Assert.Equal(("a", "//"), Run(["b;", "//"], "a//b;"));

    [Fact]
    public void NothingAfterTheStopComesOut()
    {
        var filter = new StopStringFilter(["x"]);
        Assert.Equal("ab", filter.Append("abxcd"));
        Assert.Equal("", filter.Append("more"));
        Assert.Equal("", filter.Flush());
    }
}
