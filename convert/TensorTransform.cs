namespace Tune.Convert;

/// <summary>How an output tensor's values come from its Hugging Face source tensors.</summary>
public enum TensorTransform
{
    /// <summary>The source as it is: PyTorch [d0, …, dk] becomes ne {dk, …, d0} with the same element order.</summary>
    Copy,

    /// <summary>q_proj / q_b_proj rows, each head's q_nope and q_pe rows scaled by <see cref="LlamaCppCompatibility.QueryScale"/>.</summary>
    QueryRows,

    /// <summary>The routed experts of one layer, stacked in expert order: E × [out, in] → ne {in, out, E}.</summary>
    StackExperts,

    /// <summary>kv_b_proj [n·(Dn+Dv), L] → per head the Dn key rows, transposed: [n, L, Dn] → ne {Dn, L, n}.</summary>
    KeyHalfTransposed,

    /// <summary>kv_b_proj [n·(Dn+Dv), L] → per head the Dv value rows: [n, Dv, L] → ne {L, Dv, n}.</summary>
    ValueHalf,

    /// <summary>No source: zeros (the shared expert llama.cpp needs when the model has none).</summary>
    Zeros,
}
