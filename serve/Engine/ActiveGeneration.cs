using System.Diagnostics;
using Tune.Model;
using Tune.Model.Tokenization;

namespace Tune.Serve.Engine;

/// <summary>The per-request decoding state while a request occupies a slot.</summary>
internal sealed class ActiveGeneration(GenerationRequest request, DeepSeekTokenizer tokenizer, int cachedPromptTokens)
{
    public GenerationRequest Request { get; } = request;
    public Sampler Sampler { get; } = new(request.Sampling);
    public StreamingDecoder Decoder { get; } = new(tokenizer, skipSpecial: true);
    public StopStringFilter Stops { get; } = new(request.Stops);
    public List<int> Generated { get; } = [];
    public int CachedPromptTokens { get; } = cachedPromptTokens;
    public Stopwatch Clock { get; } = Stopwatch.StartNew();
    public TimeSpan PromptTime { get; set; }

    /// <summary>The last sampled token, not yet fed to the model.</summary>
    public int Pending { get; set; }
}
