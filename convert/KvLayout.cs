namespace Tune.Convert;

/// <summary>How kv_b_proj goes into the GGUF file (gguf.md §2.6).</summary>
public enum KvLayout
{
    /// <summary>attn_k_b (transposed) + attn_v_b with the *_mla keys and head_count_kv 1: llama.cpp's converter since April 2025.</summary>
    Split,

    /// <summary>The single attn_kv_b with real head sizes and head_count_kv = heads, for runtimes that predate the split.</summary>
    Legacy,
}
