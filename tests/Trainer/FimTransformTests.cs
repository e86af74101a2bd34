using Tune.Trainer.Data;
using Tune.Trainer.Recipes;
using static Tune.Tests.Trainer.TrainerFixtures;

namespace Tune.Tests.Trainer;

/// <summary>Document-level fill-in-the-middle: exact layouts, where the cuts may fall, how often, and that data cannot inject markers.</summary>
public sealed class FimTransformTests
{
    // csharp.md §2.3's verified vector: "def add(a, b):\n" and "\n    return c" encode to these ids.
    private const string Prefix = "def add(a, b):\n";
    private const string Middle = "    c = a + b";
    private const string Suffix = "\n    return c";
    private static readonly int[] PrefixIds = [1558, 962, 7, 64, 11, 270, 1780, 185];
    private static readonly int[] SuffixIds = [185, 300, 972, 258];

    [Fact]
    public void PsmIsBosBeginPrefixHoleSuffixEndMiddleEos()
    {
        var (ids, mask) = RenderFim(Prefix + Middle + Suffix, new FimSplit(Prefix.Length, Prefix.Length + Middle.Length), FimMode.Psm);
        Assert.Equal(Text(Prefix), PrefixIds);
        Assert.Equal(Text(Suffix), SuffixIds);
        int[] expected = [Bos, FimBegin, .. PrefixIds, FimHole, .. SuffixIds, FimEnd, .. Text(Middle), Eos];
        Assert.Equal(expected, ids);
        Assert.Equal([false, .. Repeat(true, expected.Length - 1)], mask);
    }

    [Fact]
    public void SpmPutsTheSuffixFirstAndEncodesPrefixAndMiddleApart()
    {
        // The cut falls inside "return": apart, " re" | "turn" cannot merge into one token the prompt never shows.
        const string text = "x = 1\ny = x + 1\nreturn y\n";
        int cut = text.IndexOf("turn", StringComparison.Ordinal);
        var (ids, _) = RenderFim(text, new FimSplit(cut, cut + 4), FimMode.Spm);
        int[] expected = [Bos, FimBegin, FimHole, .. Text(text[(cut + 4)..]), FimEnd, .. Text(text[..cut]), .. Text("turn"), Eos];
        Assert.Equal(expected, ids);
        Assert.NotEqual(Text(text[..(cut + 4)]), [.. Text(text[..cut]), .. Text("turn")]);
    }

    [Fact]
    public void EmptyMiddleAndEmptyPrefixAreValidCuts()
    {
        const string text = "print(1)\n";
        Assert.Equal([Bos, FimBegin, .. Text("print("), FimHole, .. Text("1)\n"), FimEnd, Eos],
            RenderFim(text, new FimSplit(6, 6), FimMode.Psm).Ids);
        Assert.Equal([Bos, FimBegin, FimHole, .. Text("1)\n"), FimEnd, .. Text("print("), Eos],
            RenderFim(text, new FimSplit(0, 6), FimMode.Psm).Ids);
    }

    [Fact]
    public void RateZeroIsBosTextEosAndRateOneAlwaysCutsTheWholeDocumentBackTogether()
    {
        const string code = "fn main() {\n    println!(\"hi\");\n}\n";
        var plain = Render(new TextRecord(Origin, code));
        Assert.Equal([Bos, .. Text(code), Eos], plain.Ids);
        Assert.Equal(FimMode.None, plain.Fim);

        for (int ordinal = 0; ordinal < 50; ordinal++)
        {
            var (ids, mask, mode) = Render(new TextRecord(Origin, code), new FimRecipe { Rate = 1, Seed = 3 }, ordinal);
            Assert.Equal(FimMode.Psm, mode);
            Assert.All(mask.Skip(1), Assert.True);
            // Whatever the cut, the pieces between the markers are the tokens of prefix, suffix and middle alone.
            int begin = Array.IndexOf(ids, FimBegin), hole = Array.IndexOf(ids, FimHole), end = Array.IndexOf(ids, FimEnd);
            Assert.Equal((0, 1, Eos), (Array.IndexOf(ids, Bos), begin, ids[^1]));
            string prefix = V2.Decode(ids[(begin + 1)..hole], skipSpecial: false);
            string suffix = V2.Decode(ids[(hole + 1)..end], skipSpecial: false);
            string middle = V2.Decode(ids[(end + 1)..^1], skipSpecial: false);
            Assert.Equal(code, prefix + middle + suffix);
            Assert.Equal([Bos, FimBegin, .. Text(prefix), FimHole, .. Text(suffix), FimEnd, .. Text(middle), Eos], ids);
        }
    }

    [Fact]
    public void AboutRateOfTheDocumentsAreFimAndSpmRateOfThose()
    {
        var fim = new FimRecipe { Rate = 0.5, SpmRate = 0.25, Seed = 11 };
        var counts = new Dictionary<FimMode, int> { [FimMode.None] = 0, [FimMode.Psm] = 0, [FimMode.Spm] = 0 };
        for (int ordinal = 0; ordinal < 800; ordinal++) counts[Render(new TextRecord(Origin, "ab"), fim, ordinal).Fim]++;
        // Binomial(800, 0.5) and (800, 0.125): 5 standard deviations either side.
        Assert.InRange(counts[FimMode.None], 329, 471);
        Assert.InRange(counts[FimMode.Spm], 53, 147);
    }

    [Fact]
    public void TheDrawDependsOnlyOnSeedAndOrdinal()
    {
        var fim = new FimRecipe { Rate = 0.5, Seed = 5 };
        var record = new TextRecord(Origin, "for i in range(10):\n    print(i)\n");
        Assert.Equal(Render(record, fim, 17).Ids, Render(record, fim, 17).Ids);
        var differentSeed = Enumerable.Range(0, 20).Select(o => Render(record, fim with { Seed = 6 }, o).Ids);
        var sameSeed = Enumerable.Range(0, 20).Select(o => Render(record, fim, o).Ids);
        Assert.NotEqual(sameSeed.SelectMany(x => x), differentSeed.SelectMany(x => x));
    }

    [Fact]
    public void CutsAreUniformOverCharacterBoundariesAndNeverSplitASurrogatePair()
    {
        const string text = "a😀b😀😀c";   // 9 chars, 3 surrogate pairs: 7 boundaries
        int[] allowed = [0, 1, 3, 4, 6, 8, 9];
        var hits = new int[text.Length + 1];
        for (int i = 0; i < 14000; i++)
        {
            var random = DeterministicRandom.For(1, 0, i);
            FimSplit split = FimSplit.Draw(text, ref random);
            Assert.True(split.MiddleStart <= split.MiddleEnd);
            hits[split.MiddleStart]++;
            hits[split.MiddleEnd]++;
        }
        for (int position = 0; position <= text.Length; position++)
        {
            if (allowed.Contains(position)) Assert.InRange(hits[position], 3600, 4400);   // 28000 draws / 7 = 4000
            else Assert.Equal(0, hits[position]);
        }
    }

    [Fact]
    public void MarkersWrittenInTheCodeStayText()
    {
        const string code = "s = '<｜fim▁hole｜>'  # <｜fim▁end｜><｜end▁of▁sentence｜>\n";
        for (int ordinal = 0; ordinal < 10; ordinal++)
        {
            var (ids, _, _) = Render(new TextRecord(Origin, code), new FimRecipe { Rate = 1 }, ordinal);
            Assert.Equal([Bos, FimBegin, FimHole, FimEnd, Eos], ids.Where(id => id >= 100000));
        }
    }

    private static (int[] Ids, bool[] Mask) RenderFim(string text, FimSplit split, FimMode mode)
    {
        var encoder = new DocumentEncoder(V2, new FimRecipe { Rate = 1 }, RandomStreams.TrainFim);
        var buffer = new DocumentBuffer(V2);
        encoder.EncodeFim(text, split, mode, buffer);
        buffer.Flush();
        return ([.. buffer.Ids], [.. buffer.Targets]);
    }
}
