using System.Threading.Channels;
using Tune.Model;

namespace Tune.Serve.Engine;

/// <summary>Why a generation ended.</summary>
public enum FinishReason
{
    EndOfSequence,
    StopString,
    Length,
    Cancelled,
}

/// <summary>What the engine reports for a request, in order: text pieces, then exactly one Done or Failed.</summary>
public abstract record GenerationEvent;

public sealed record TextDelta(string Text) : GenerationEvent;

public sealed record GenerationDone(GenerationSummary Summary) : GenerationEvent;

public sealed record GenerationFailed(string Message) : GenerationEvent;

/// <param name="PromptTokens">Tokens in the prompt.</param>
/// <param name="CachedPromptTokens">Prompt tokens whose cache entries were reused from an earlier request.</param>
/// <param name="StopWord">The stop string that ended the text, for <see cref="FinishReason.StopString"/>.</param>
public sealed record GenerationSummary(
    FinishReason Reason, string? StopWord, int Slot, int PromptTokens, int CachedPromptTokens, IReadOnlyList<int> Tokens,
    TimeSpan PromptTime, TimeSpan DecodeTime)
{
    public int ComputedPromptTokens => PromptTokens - CachedPromptTokens;
}

/// <summary>One generation job: the prompt, how to sample, when to stop, and the channel its events go to.</summary>
public sealed class GenerationRequest
{
    private readonly Channel<GenerationEvent> _events = Channel.CreateUnbounded<GenerationEvent>(
        new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });

    public required int[] Prompt { get; init; }

    /// <summary>The adapter to generate with; null = the base model.</summary>
    public string? Adapter { get; init; }

    public required SamplingOptions Sampling { get; init; }
    public required int MaxTokens { get; init; }
    public IReadOnlyList<string> Stops { get; init; } = [];
    public CancellationToken Cancel { get; init; }

    public ChannelReader<GenerationEvent> Events => _events.Reader;
    internal ChannelWriter<GenerationEvent> Writer => _events.Writer;
}
