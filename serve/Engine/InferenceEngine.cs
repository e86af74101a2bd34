using System.Collections.Concurrent;
using System.Diagnostics;
using TorchSharp;
using Tune.Model;
using static TorchSharp.torch;

namespace Tune.Serve.Engine;

/// <summary>
/// Runs generation requests on N slots from one worker thread (libtorch's grad mode and dispose scopes are per
/// thread, and one thread owns the model so adapter switches never race a forward pass). Each round admits waiting
/// requests into free slots (prefill, one request at a time, reusing the longest cached prompt prefix) and then
/// advances every busy slot by one token with continuous batching: the pending tokens of all slots on the same
/// adapter go through one forward pass, each row at its own position in its own slot's latent cache, so quantised
/// weights are read once per round rather than once per slot. Requests join and leave the batch between rounds;
/// sampling, stop strings and limits stay per request.
/// </summary>
public sealed class InferenceEngine : IDisposable
{
    private readonly ServedModel _served;
    private readonly Slot[] _slots;
    private readonly ConcurrentQueue<GenerationRequest> _waiting = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly object _admission = new();
    private readonly Thread _worker;
    private readonly CancellationTokenSource _stop = new();
    private int _queued, _busy;
    private long _clock;

    public int Context { get; }
    public int SlotCount => _slots.Length;
    public int MaxQueued { get; }
    public EngineMetrics Metrics { get; } = new();

    /// <summary>Requests waiting for a slot.</summary>
    public int Queued => Volatile.Read(ref _queued);

    /// <summary>Slots generating now.</summary>
    public int Busy => Volatile.Read(ref _busy);

    public int CachedTokens => _slots.Sum(s => s.CachedTokens);

    public InferenceEngine(ServedModel served, int slots, int context, int maxQueued)
    {
        if (context > served.Model.Config.MaxPositionEmbeddings)
            throw new ArgumentException($"--ctx {context}: the model's context is {served.Model.Config.MaxPositionEmbeddings}");
        _served = served;
        Context = context;
        MaxQueued = maxQueued;
        _slots = Enumerable.Range(0, slots)
            .Select(i => new Slot(i, new LatentCache(served.Model.Config, 1, context, served.Model.Runtime))).ToArray();
        _worker = new Thread(Run) { IsBackground = true, Name = "tune-engine" };
        _worker.Start();
    }

    /// <summary>Queues a request; false when every slot is busy and the queue is full.</summary>
    public bool TrySubmit(GenerationRequest request)
    {
        if (request.Prompt.Length == 0) throw new ArgumentException("the prompt has no tokens");
        if (request.MaxTokens < 1) throw new ArgumentException($"max tokens must be at least 1, got {request.MaxTokens}");
        request.Sampling.Validate();
        if (request.Prompt.Length >= Context)
            throw new ArgumentException($"the prompt has {request.Prompt.Length} tokens; the context holds {Context}");
        lock (_admission)
        {
            if (_queued + _busy >= _slots.Length + MaxQueued) return false;
            _queued++;
            _waiting.Enqueue(request);
        }
        _wake.Release();
        return true;
    }

    private void Run()
    {
        using var noGrad = no_grad();
        while (!_stop.IsCancellationRequested)
        {
            Admit();
            foreach (Slot slot in _slots.Where(s => s.Active?.Request.Cancel.IsCancellationRequested == true))
                Guarded(slot, () => Finish(slot, FinishReason.Cancelled));
            // One batch per adapter, the attached one first so a round switches adapters as rarely as possible.
            var batches = _slots.Where(s => s.Active is not null).GroupBy(s => s.Adapter)
                .OrderBy(g => g.Key == _served.ActiveAdapter ? 0 : 1).ThenBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => g.ToList()).ToList();
            if (batches.Count == 0)
            {
                try { _wake.Wait(_stop.Token); }
                catch (OperationCanceledException) { break; }
                continue;
            }
            foreach (List<Slot> batch in batches) Step(batch);
        }
        foreach (Slot slot in _slots.Where(s => s.Active is not null)) Finish(slot, FinishReason.Cancelled);
        while (_waiting.TryDequeue(out GenerationRequest? request)) request.Writer.TryComplete();
    }

    private void Admit()
    {
        while (_slots.Any(s => s.Active is null) && _waiting.TryDequeue(out GenerationRequest? request))
        {
            bool cancelled = request.Cancel.IsCancellationRequested;
            // Leaving the queue and taking a slot is one step for TrySubmit's count.
            lock (_admission)
            {
                _queued--;
                if (!cancelled) Interlocked.Increment(ref _busy);
            }
            if (cancelled)
            {
                request.Writer.TryComplete();
                continue;
            }
            // The free slot whose cache shares the longest prefix with this prompt; else the one unused longest.
            Slot slot = _slots.Where(s => s.Active is null)
                .OrderByDescending(s => s.SharedPrefix(request.Prompt, request.Adapter)).ThenBy(s => s.LastUsed).First();
            slot.LastUsed = ++_clock;
            Guarded(slot, () => Prefill(slot, request));
        }
    }

    private void Prefill(Slot slot, GenerationRequest request)
    {
        // At least the last prompt token is recomputed: its logits choose the first generated token.
        int reuse = Math.Min(slot.SharedPrefix(request.Prompt, request.Adapter), request.Prompt.Length - 1);
        var generation = new ActiveGeneration(request, _served.Tokenizer, reuse);
        slot.Active = generation;
        slot.KeepPrefix(reuse, request.Adapter);
        float[] logits = LastLogits([slot], request.Prompt[reuse..].Select(id => (long)id).ToArray());
        slot.Appended(request.Prompt.AsSpan(reuse));
        generation.PromptTime = generation.Clock.Elapsed;
        Emit(slot, Sample(generation, logits));
    }

    /// <summary>
    /// One decode step for <paramref name="batch"/> (slots on one adapter) in a single forward pass. When that pass
    /// fails, the slots are stepped one by one so that only a request that fails alone ends (a failed pass leaves
    /// every cache as it was).
    /// </summary>
    private void Step(List<Slot> batch)
    {
        float[] logits;
        try
        {
            logits = LastLogits(batch, batch.Select(s => (long)s.Active!.Pending).ToArray());
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            if (batch.Count == 1) Fail(batch[0], e);
            else foreach (Slot slot in batch) Step([slot]);
            return;
        }
        Metrics.AddDecodePass(batch.Count);
        int vocab = logits.Length / batch.Count;
        for (int i = 0; i < batch.Count; i++)
        {
            Slot slot = batch[i];
            int row = i;
            slot.Appended([slot.Active!.Pending]);
            Guarded(slot, () => Emit(slot, Sample(slot.Active!, logits.AsSpan(row * vocab, vocab))));
        }
    }

    /// <summary>
    /// Logits of the last position of each row of <paramref name="ids"/> (the slots' rows one after another, the same
    /// count each), row i continuing slot i's cache, under the slots' adapter: [rows × vocab].
    /// </summary>
    private float[] LastLogits(IReadOnlyList<Slot> slots, long[] ids)
    {
        _served.Activate(slots[0].Adapter);
        using var scope = NewDisposeScope();
        Tensor input = tensor(ids).view(slots.Count, -1);
        return _served.Model.Forward(input, slots.Select(s => s.Cache).ToList(), lastPositionOnly: true).cpu().data<float>().ToArray();
    }

    private int Sample(ActiveGeneration generation, ReadOnlySpan<float> logits) =>
        generation.Sampler.Next(logits[..Math.Min(_served.Tokenizer.VocabSize, logits.Length)]);

    private void Emit(Slot slot, int token)
    {
        ActiveGeneration generation = slot.Active!;
        if (token == _served.Model.Config.EosTokenId)
        {
            Finish(slot, FinishReason.EndOfSequence);
            return;
        }
        generation.Generated.Add(token);
        string text = generation.Stops.Append(generation.Decoder.Append(token));
        if (text.Length > 0) generation.Request.Writer.TryWrite(new TextDelta(text));
        if (generation.Stops.StopWord is not null) Finish(slot, FinishReason.StopString);
        // The context holds prompt and generated tokens together (--ctx).
        else if (generation.Generated.Count >= generation.Request.MaxTokens || generation.Request.Prompt.Length + generation.Generated.Count >= Context)
            Finish(slot, FinishReason.Length);
        else generation.Pending = token;
    }

    private void Finish(Slot slot, FinishReason reason)
    {
        ActiveGeneration generation = slot.Active!;
        slot.Active = null;
        string rest = generation.Stops.Append(generation.Decoder.Flush()) + generation.Stops.Flush();
        if (rest.Length > 0) generation.Request.Writer.TryWrite(new TextDelta(rest));
        var summary = new GenerationSummary(reason, generation.Stops.StopWord, slot.Id, generation.Request.Prompt.Length,
            generation.CachedPromptTokens, generation.Generated, generation.PromptTime, generation.Clock.Elapsed - generation.PromptTime);
        Metrics.Add(summary);
        // The slot counts as free before the client hears the end, so its next request is never refused as queue-full.
        Interlocked.Decrement(ref _busy);
        generation.Request.Writer.TryWrite(new GenerationDone(summary));
        generation.Request.Writer.TryComplete();
    }

    /// <summary>A failure ends that request with an error and wipes its slot; the engine keeps serving the others.</summary>
    private void Guarded(Slot slot, Action action)
    {
        try
        {
            action();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Fail(slot, e);
        }
    }

    private void Fail(Slot slot, Exception e)
    {
        ActiveGeneration? generation = slot.Active;
        slot.Active = null;
        slot.KeepPrefix(0, null);
        if (generation is null) return;
        Interlocked.Decrement(ref _busy);
        generation.Request.Writer.TryWrite(new GenerationFailed(e.Message));
        generation.Request.Writer.TryComplete();
    }

    public void Dispose()
    {
        _stop.Cancel();
        _worker.Join();
        foreach (Slot slot in _slots) slot.Dispose();
        _wake.Dispose();
        _stop.Dispose();
    }
}
