using Tune.Tests.Formats;
using Tune.Trainer.Data;
using Tune.Trainer.Recipes;

namespace Tune.Tests.Trainer;

/// <summary>Directories of source files: glob include/exclude, a fixed order, binary and version-control files left out.</summary>
public sealed class SourceTreeTests
{
    [Theory]
    [InlineData("*.py", "a.py", true)]
    [InlineData("*.py", "pkg/sub/b.py", true)]
    [InlineData("*.py", "a.pyc", false)]
    [InlineData("src/*.rs", "src/main.rs", true)]
    [InlineData("src/*.rs", "src/bin/tool.rs", false)]
    [InlineData("src/**/*.rs", "src/main.rs", true)]
    [InlineData("src/**/*.rs", "src/bin/deep/tool.rs", true)]
    [InlineData("src/**/*.rs", "lib/src/main.rs", false)]
    [InlineData("build/**", "build/out/x.o", true)]
    [InlineData("node_modules", "web/node_modules", true)]
    [InlineData("test_?.go", "cmd/test_a.go", true)]
    [InlineData("test_?.go", "cmd/test_ab.go", false)]
    [InlineData("*.min.js", "dist/app.min.js", true)]
    [InlineData("a+b(c).txt", "a+b(c).txt", true)]
    public void GlobsMatchLikeGitignore(string pattern, string path, bool matches) =>
        Assert.Equal(matches, new Glob(pattern).Matches(path));

    [Fact]
    public void DoubleStarInsideANameIsAnError() =>
        Assert.Throws<FormatException>(() => new Glob("src/a**b"));

    [Fact]
    public async Task IncludeExcludeSortedAndBinarySkipped()
    {
        using var dir = new TempDirectory();
        Write(dir, "b.py", "print('b')\n");
        Write(dir, "a.py", "\uFEFFprint('a')\n");
        Write(dir, "pkg/z.py", "z = 1\n");
        Write(dir, "pkg/m.rs", "fn m() {}\n");
        Write(dir, "pkg/tests/test_z.py", "assert True\n");
        Write(dir, "build/gen.py", "generated = True\n");
        Write(dir, ".git/hooks/pre-commit.py", "hook\n");
        Write(dir, "notes.txt", "not code\n");
        File.WriteAllBytes(Path.Combine(dir.Path, "pkg", "blob.py"), [0x70, 0x00, 0x01]);
        File.WriteAllBytes(Path.Combine(dir.Path, "latin1.py"), [0x70, 0x3D, 0xE9, 0x0A]);   // "p=é\n" in Latin-1: not UTF-8

        var source = new DataSourceRecipe { Path = dir.Path, Include = ["*.py", "*.rs"], Exclude = ["build/", "tests"] };
        var skipped = new List<string>();
        var records = new List<TextRecord>();
        await foreach (TrainingRecord record in RecordSources.ReadAsync(source, "data.train.0", "/", skipped.Add, CancellationToken.None))
            records.Add(Assert.IsType<TextRecord>(record));

        Assert.Equal(["a.py", "b.py", "pkg/m.rs", "pkg/z.py"], records.Select(r => Relative(dir, r.Origin.File)));
        Assert.Equal("print('a')\n", records[0].Text);
        Assert.Equal(["latin1.py", "pkg/blob.py"], skipped.Select(p => Relative(dir, p)).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task ADirectoryOfJsonlFilesIsReadFileByFileInOrder()
    {
        using var dir = new TempDirectory();
        Write(dir, "part-2.jsonl", """{"text": "two"}""");
        Write(dir, "part-1.jsonl", """{"text": "one"}""");
        Write(dir, "README.md", "# not data");
        var source = new DataSourceRecipe { Path = dir.Path, Format = SourceFormat.Jsonl };
        var texts = new List<string>();
        await foreach (TrainingRecord record in RecordSources.ReadAsync(source, "data.train.0", "/", _ => { }, CancellationToken.None))
            texts.Add(((TextRecord)record).Text);
        Assert.Equal(["one", "two"], texts);
    }

    [Fact]
    public async Task AMissingPathOrAnUnknownExtensionNamesTheSourceKey()
    {
        using var dir = new TempDirectory();
        var missing = await Assert.ThrowsAsync<FileNotFoundException>(() => Drain(new DataSourceRecipe { Path = "nope.jsonl" }, dir.Path));
        Assert.StartsWith("data.train.0.path: ", missing.Message);
        Write(dir, "data.csv", "a,b");
        var unknown = await Assert.ThrowsAsync<FormatException>(() => Drain(new DataSourceRecipe { Path = "data.csv" }, dir.Path));
        Assert.StartsWith("data.train.0.format: ", unknown.Message);
        var chatDir = await Assert.ThrowsAsync<FormatException>(() => Drain(new DataSourceRecipe { Path = ".", Kind = RecordKind.Messages }, dir.Path));
        Assert.StartsWith("data.train.0.kind: ", chatDir.Message);
    }

    private static async Task Drain(DataSourceRecipe source, string baseDirectory)
    {
        await foreach (TrainingRecord _ in RecordSources.ReadAsync(source, "data.train.0", baseDirectory, _ => { }, CancellationToken.None)) { }
    }

    private static void Write(TempDirectory dir, string relative, string text)
    {
        string path = Path.Combine(dir.Path, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
    }

    private static string Relative(TempDirectory dir, string path) => Path.GetRelativePath(dir.Path, path).Replace('\\', '/');
}
