using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace Tune.Tests.Convert;

/// <summary>
/// Runs oracle/logits.mjs: llama.cpp (node-llama-cpp's prebuilt libllama, CPU, F32 KV cache) evaluates each GGUF file
/// on its prompt (with a GGUF LoRA adapter on the context when the job names one) and returns the next-token logits at
/// every position, all files in one node process.
/// </summary>
internal static class LlamaCppLogits
{
    public sealed record Job(string Model, int[] Tokens, string? Lora = null);

    private static string Script => Path.Combine(RepoPaths.Root, "oracle", "logits.mjs");
    private static string Modules => Path.Combine(RepoPaths.Root, "oracle", "node_modules", "node-llama-cpp");

    /// <summary>Logits per job, [position][token].</summary>
    public static float[][][] Evaluate(IReadOnlyList<Job> jobs, int vocab)
    {
        if (!Directory.Exists(Modules))
            Assert.Fail($"{Modules} is missing: the llama.cpp oracle is not installed; run oracle/setup.sh");
        string work = Directory.CreateTempSubdirectory("tune-logits-").FullName;
        try
        {
            string[] outputs = jobs.Select((_, i) => Path.Combine(work, $"{i}.f32")).ToArray();
            string jobsFile = Path.Combine(work, "jobs.json");
            File.WriteAllText(jobsFile, JsonSerializer.Serialize(jobs.Select((j, i) => new { model = j.Model, tokens = j.Tokens, @out = outputs[i], lora = j.Lora })));
            var start = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = RepoPaths.Root };
            start.ArgumentList.Add(Script);
            start.ArgumentList.Add(jobsFile);
            Process node;
            try { node = Process.Start(start)!; }
            catch (System.ComponentModel.Win32Exception e)
            {
                Assert.Fail($"cannot start node ({e.Message}): the llama.cpp oracle needs node on PATH; run oracle/setup.sh");
                throw;
            }
            using (node)
            {
                Task<string> stderr = node.StandardError.ReadToEndAsync();
                node.StandardOutput.ReadToEnd();
                node.WaitForExit();
                if (node.ExitCode != 0) Assert.Fail($"oracle/logits.mjs exited with {node.ExitCode} (run oracle/setup.sh?):\n{stderr.Result}");
            }
            return jobs.Select((job, i) =>
            {
                float[] flat = MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(outputs[i])).ToArray();
                Assert.Equal(job.Tokens.Length * vocab, flat.Length);
                return Enumerable.Range(0, job.Tokens.Length).Select(t => flat.AsSpan(t * vocab, vocab).ToArray()).ToArray();
            }).ToArray();
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
