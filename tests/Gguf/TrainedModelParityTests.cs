using System.Diagnostics;
using Tune.Formats;
using Tune.Model;
using Tune.Quantize;
using Tune.Serve.Gguf;
using Tune.Tests.Convert;
using Xunit.Abstractions;

namespace Tune.Tests.Gguf;

/// <summary>
/// On a model that has learned something (<see cref="TrainedGgufModels"/>: trained, merged, converted and quantised by
/// Tune's own entry points), Tune's greedy continuation of 32 tokens is llama.cpp's, token for token, for q8_0 and
/// q4_k_m, and it is the memorised text. llama.cpp (oracle/logits.mjs, F32 KV cache as Tune's latent cache is f32)
/// evaluates the prompt plus Tune's tokens in one batch: its argmax after every prefix being Tune's next token is
/// what makes its own greedy continuation the same sequence. The random models of <see cref="QuantisedGgufTests"/>
/// have near-uniform distributions, where argmax is a near-tie that one activation flipping a Q8_0/Q8_K rounding
/// level can decide; a model that recites its text is confident. So beyond equality the test asserts why it is not
/// luck: the smallest top-1/top-2 margin along the path exceeds twice the largest |Δlogit| between the engines (no
/// difference of the size measured could have moved a choice). Measured: margins ≥ 8.0 against |Δlogit| ≤ 4.4e-2
/// (q8_0) and ≤ 1.2e-1 (q4_k_m; the same rounding-level flips as on the random models, now far from any tie).
/// </summary>
[Collection("torch")]
public sealed class TrainedModelParityTests(ITestOutputHelper output)
{
    /// <summary>BOS and the text's first 23 tokens.</summary>
    private const int PromptLength = 24;
    private const int Continuation = 32;

    [Theory]
    [InlineData("q8_0", "q8_0")]
    // gate/up and layer 1's down in q4_K, layer 2's down in q6_K (use_more_bits): the k-quant kernels both run.
    [InlineData("q4_k_m", "q4_K q6_K")]
    public void TheGreedyContinuationIsLlamaCpps(string mix, string expertTypes)
    {
        var clock = Stopwatch.StartNew();
        TimeSpan cpu = Process.GetCurrentProcess().TotalProcessorTime;
        TrainedModel trained = TrainedGgufModels.Trained;
        string gguf = GgufModels.Quantise(trained.F32Gguf, QuantizationMix.Parse(mix));
        int[] prompt = trained.Tokens[..PromptLength];
        int[] tokens, documentChoices;
        float[][] tune;
        string text;
        using (var loaded = GgufModel.Load(gguf, TorchRuntime.Cpu, threads: 2))
        {
            using (GgufFile file = GgufFile.Open(gguf))
                Assert.Equal(expertTypes, string.Join(' ', file.Tensors.Where(t => t.Name.Contains("_exps.", StringComparison.Ordinal))
                    .Select(t => t.Type).Distinct().Order().Select(t => t.Name())));
            (tokens, tune) = GreedyDecoding.Run(loaded.Model, prompt, Continuation);
            text = loaded.Tokenizer.Decode(tokens, skipSpecial: false);
            documentChoices = GreedyDecoding.Logits(loaded.Model, trained.Tokens[..^1]).Select(GreedyDecoding.ArgMax).ToArray();
        }
        // The logits after the prompt's last token and after each continuation token but the last.
        float[][] llama = LlamaCppLogits.Evaluate([new LlamaCppLogits.Job(gguf, [.. prompt, .. tokens[..^1]])],
            TrainedGgufModels.Config.VocabSize)[0][(PromptLength - 1)..];

        int[] llamaTokens = llama.Select(GreedyDecoding.ArgMax).ToArray();
        double[] tuneMargins = tune.Select(GreedyDecoding.Margin).ToArray();
        double[] llamaMargins = llama.Select(GreedyDecoding.Margin).ToArray();
        double[] dLogit = tune.Zip(llama, (a, b) => a.Zip(b, (x, y) => (double)Math.Abs(x - y)).Max()).ToArray();
        int agreeing = tokens.Zip(llamaTokens).Count(p => p.First == p.Second);
        int recited = tokens.Zip(trained.Tokens[PromptLength..]).Count(p => p.First == p.Second);
        int known = documentChoices.Zip(trained.Tokens[1..]).Count(p => p.First == p.Second);
        string curve = string.Join(' ', trained.Steps.Where(m => m.Step % 10 == 0).Select(m => m.Loss.ToString("F3")));
        output.WriteLine($"trained on {trained.Tokens.Length} tokens: loss {trained.LossBefore:F3} → {trained.LossAfter:F3} " +
                         $"in {trained.Steps.Count} steps (every 10th: {curve}), " +
                         $"{trained.TrainingTime.TotalSeconds:F1} s ({trained.TrainingCpu.TotalSeconds:F1} s of CPU)");
        output.WriteLine($"{mix}: {agreeing}/{Continuation} greedy steps agree with llama.cpp; {recited}/{Continuation} are the memorised text; " +
                         $"given the document, {known}/{documentChoices.Length} of its next tokens are the argmax");
        output.WriteLine($"top-1/top-2 margin along the path: Tune min {tuneMargins.Min():F2} median {Median(tuneMargins):F2}, " +
                         $"llama.cpp min {llamaMargins.Min():F2}; max |Δlogit| {dLogit.Max():E2} (median step {Median(dLogit):E2})");
        output.WriteLine($"continuation: \"{text.ReplaceLineEndings("\\n")}\" ({string.Join(' ', tokens)})");
        TimeSpan cpuUsed = Process.GetCurrentProcess().TotalProcessorTime - cpu;
        output.WriteLine($"test time {clock.Elapsed.TotalSeconds:F1} s ({cpuUsed.TotalSeconds:F1} s of CPU, llama.cpp's process not counted)");

        Assert.Equal(tokens, llamaTokens);
        Assert.True(tokens.Distinct().Count() > Continuation / 2, "a continuation that repeats a few tokens proves little");
        Assert.True(recited >= Continuation * 7 / 8, $"only {recited}/{Continuation} tokens are the memorised text: the model has not learned it");
        Assert.True(known >= documentChoices.Length * 9 / 10, $"only {known}/{documentChoices.Length} of the document's tokens are learned");
        Assert.True(tuneMargins.Min() > 2 * dLogit.Max(),
            $"smallest margin {tuneMargins.Min():F3} is not above twice the largest |Δlogit| {dLogit.Max():E2}: agreement was luck");
    }

    private static double Median(double[] values) => values.Order().ElementAt(values.Length / 2);
}
