using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>
/// kv_b_proj split per head for the absorbed attention (spec §3): <see cref="Keys"/>[h] is W_UKᵀ [r, dn] (q_nope →
/// latent), <see cref="Values"/>[h] is W_UV [dv, r] (latent → value).
/// </summary>
public sealed record AbsorbedKv(IReadOnlyList<IWeightMatrix> Keys, IReadOnlyList<IWeightMatrix> Values)
{
    /// <summary>x [B, H, T, in] → [B, H, T, out], head h multiplied by <paramref name="heads"/>[h].</summary>
    public static Tensor PerHead(IReadOnlyList<IWeightMatrix> heads, Tensor x) =>
        stack(heads.Select((m, h) => m.Multiply(x.select(1, h))).ToArray(), 1);
}
