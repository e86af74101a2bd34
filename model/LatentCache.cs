using TorchSharp;
using Tune.Formats;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>
/// The absorbed-MLA KV cache (spec §3): per layer and token only the normalised latent ĉ [kv_lora_rank] and the
/// roped shared key k̃_pe [qk_rope_head_dim] — 576 values for Lite, instead of H·(192+128) for a per-head cache.
/// Storage is allocated once for <see cref="Capacity"/> tokens.
/// </summary>
public sealed class LatentCache : IDisposable
{
    private readonly Tensor[] _latent;
    private readonly Tensor[] _keyRope;

    public int Capacity { get; }
    public long Batch { get; }

    /// <summary>Tokens cached so far (the position of the next token).</summary>
    public int Length { get; private set; }

    public LatentCache(DeepSeekV2Config config, long batch, int capacity, TorchRuntime runtime)
    {
        if (capacity <= 0) throw new ArgumentOutOfRangeException(nameof(capacity), "the cache needs room for at least one token");
        Capacity = capacity;
        Batch = batch;
        _latent = new Tensor[config.NumHiddenLayers];
        _keyRope = new Tensor[config.NumHiddenLayers];
        for (int l = 0; l < config.NumHiddenLayers; l++)
        {
            _latent[l] = zeros([batch, capacity, config.KvLoraRank], runtime.DType, runtime.Device).DetachFromDisposeScope();
            _keyRope[l] = zeros([batch, capacity, config.QkRopeHeadDim], runtime.DType, runtime.Device).DetachFromDisposeScope();
        }
    }

    public long BytesPerToken => _latent.Sum(t => t.shape[2] * t.ElementSize) + _keyRope.Sum(t => t.shape[2] * t.ElementSize);

    /// <summary>
    /// Writes the new tokens' entries of one layer at positions Length… and returns views of everything cached for
    /// that layer, new tokens included. Call <see cref="Advance"/> once all layers have appended.
    /// </summary>
    public (Tensor Latent, Tensor KeyRope) Append(int layer, Tensor latent, Tensor keyRope)
    {
        long count = latent.shape[1];
        if (Length + count > Capacity)
            throw new InvalidOperationException($"the context holds {Capacity} tokens; {Length} cached + {count} new do not fit");
        using (no_grad())
        {
            _latent[layer].narrow(1, Length, count).copy_(latent);
            _keyRope[layer].narrow(1, Length, count).copy_(keyRope);
        }
        return (_latent[layer].narrow(1, 0, Length + count), _keyRope[layer].narrow(1, 0, Length + count));
    }

    public void Advance(int count) => Length += count;

    /// <summary>Forgets tokens from <paramref name="length"/> on (for reusing a shared prompt prefix).</summary>
    public void Truncate(int length)
    {
        if (length < 0 || length > Length) throw new ArgumentOutOfRangeException(nameof(length));
        Length = length;
    }

    public void Dispose()
    {
        foreach (Tensor t in _latent) t.Dispose();
        foreach (Tensor t in _keyRope) t.Dispose();
    }
}
