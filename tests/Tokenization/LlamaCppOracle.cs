using System.Diagnostics;
using System.Text.Json;

namespace Tune.Tests.Tokenization;

/// <summary>Runs oracle/tokenize.mjs: llama.cpp tokenizes a whole batch of strings in one node process.</summary>
internal static class LlamaCppOracle
{
    public static int[][] Tokenize(string gguf, IReadOnlyList<string> texts, bool specialTokens)
    {
        if (!Directory.Exists(TokenizationFiles.OracleModules))
            Assert.Fail($"{TokenizationFiles.OracleModules} is missing: the llama.cpp oracle is not installed; run oracle/setup.sh");

        string input = Path.GetTempFileName();
        try
        {
            File.WriteAllText(input, JsonSerializer.Serialize(texts));
            var start = new ProcessStartInfo("node")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = RepoPaths.Root,
            };
            start.ArgumentList.Add(TokenizationFiles.OracleScript);
            start.ArgumentList.Add(gguf);
            if (specialTokens) start.ArgumentList.Add("--special");
            start.ArgumentList.Add(input);

            Process node;
            try { node = Process.Start(start)!; }
            catch (System.ComponentModel.Win32Exception e)
            {
                Assert.Fail($"cannot start node ({e.Message}): the llama.cpp oracle needs node on PATH; run oracle/setup.sh");
                throw;
            }
            using (node)
            {
                var stderr = node.StandardError.ReadToEndAsync();
                string stdout = node.StandardOutput.ReadToEnd();
                node.WaitForExit();
                if (node.ExitCode != 0)
                    Assert.Fail($"oracle/tokenize.mjs exited with {node.ExitCode} (run oracle/setup.sh?):\n{stderr.Result}");
                int[][] ids = JsonSerializer.Deserialize<int[][]>(stdout)
                    ?? throw new InvalidOperationException("oracle/tokenize.mjs printed null");
                Assert.Equal(texts.Count, ids.Length);
                return ids;
            }
        }
        finally
        {
            File.Delete(input);
        }
    }
}
