namespace Tune.Formats;

/// <summary>
/// Splits tensors, kept in order, into a given number of non-empty shards whose largest is as small as possible.
/// Like transformers' max_shard_size filling, the shards come out full except the last.
/// </summary>
internal static class ShardPlan
{
    /// <summary>The shard index of each tensor, non-decreasing, covering every shard 0..shards-1.</summary>
    public static int[] Assign(IReadOnlyList<long> sizes, int shards)
    {
        if (shards < 1) throw new ArgumentOutOfRangeException(nameof(shards), shards, "need at least one shard");
        if (sizes.Count < shards)
            throw new ArgumentException($"{sizes.Count} tensors cannot fill {shards} shards; every shard needs at least one", nameof(shards));

        long low = sizes.Count == 0 ? 0 : sizes.Max(), high = sizes.Sum();
        while (low < high)
        {
            long capacity = low + (high - low) / 2;
            if (GreedyShardCount(sizes, capacity) <= shards) high = capacity;
            else low = capacity + 1;
        }
        return Fill(sizes, shards, low);
    }

    private static int GreedyShardCount(IReadOnlyList<long> sizes, long capacity)
    {
        int count = 1;
        long load = 0;
        foreach (long size in sizes)
        {
            if (load > 0 && load + size > capacity)
            {
                count++;
                load = 0;
            }
            load += size;
        }
        return count;
    }

    // Greedy fill up to the capacity, except that a shard closes early once each remaining tensor is needed to keep
    // a later shard from being empty.
    private static int[] Fill(IReadOnlyList<long> sizes, int shards, long capacity)
    {
        int[] assignment = new int[sizes.Count];
        int shard = 0;
        long load = 0;
        for (int i = 0; i < sizes.Count; i++)
        {
            bool full = load + sizes[i] > capacity;
            bool neededLater = sizes.Count - i == shards - 1 - shard;
            if (i > 0 && (full || neededLater))
            {
                shard++;
                load = 0;
            }
            assignment[i] = shard;
            load += sizes[i];
        }
        return assignment;
    }
}
