using TorchSharp;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>
/// Gradient checkpointing of one decoder layer (TorchSharp has no torch.utils.checkpoint): the forward keeps only the
/// layer's input; backward runs the layer again with grad enabled and the same random state (dropout), then
/// back-propagates through the recomputed graph. Trainable parameters inside the layer (LoRA) receive their gradients
/// from that inner backward; the input's gradient is returned. The layer's balance loss is a second output, so its
/// gradient flows through the recomputation too.
/// </summary>
internal sealed class LayerCheckpoint : autograd.MultiTensorFunction<LayerCheckpoint>
{
    public override string Name => nameof(LayerCheckpoint);

    /// <summary>vars: h [B, T, D], the <see cref="DecoderLayer"/>, the attention mask (or null), whether to return the balance loss.</summary>
    public override List<Tensor> forward(autograd.AutogradContext ctx, params object?[] vars)
    {
        var h = (Tensor)vars[0]!;
        var layer = (DecoderLayer)vars[1]!;
        var mask = (Tensor?)vars[2];
        bool withAux = (bool)vars[3]!;
        // Tensors go through save_for_backward (TorchSharp refuses them in save_data); the mask is optional, so last.
        Tensor rng = random.get_rng_state();
        ctx.save_for_backward(mask is null ? [h, rng] : [h, rng, mask]);
        ctx.save_data("layer", layer);
        ctx.save_data("aux", withAux);
        return Run(layer, h, mask, withAux);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> gradients)
    {
        List<Tensor> saved = ctx.get_saved_variables();
        Tensor h = saved[0];
        Tensor? mask = saved.Count > 2 ? saved[2] : null;
        var layer = (DecoderLayer)ctx.get_data("layer");
        bool withAux = (bool)ctx.get_data("aux");
        using Tensor now = random.get_rng_state();
        random.set_rng_state(saved[1]);
        Tensor input;
        using (enable_grad())
        {
            input = h.detach().requires_grad_(true);
            List<Tensor> outputs = Run(layer, input, mask, withAux);
            autograd.backward(outputs, gradients.Take(outputs.Count).ToList());
        }
        random.set_rng_state(now);
        return [input.grad!, null!, null!, null!];
    }

    private static List<Tensor> Run(DecoderLayer layer, Tensor h, Tensor? mask, bool withAux)
    {
        var losses = withAux ? new List<Tensor>() : null;
        Tensor output = layer.Forward(h, null, mask, losses);
        if (losses is null) return [output];
        return [output, losses.Count > 0 ? losses[0] : zeros([], ScalarType.Float32, h.device)];
    }
}
