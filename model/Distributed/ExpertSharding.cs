using Tune.Formats;
using static TorchSharp.torch;

namespace Tune.Model.Distributed;

/// <summary>
/// Which routed experts this rank holds: a contiguous block of E/N of every MoE layer, so rank r owns experts
/// [r·E/N, (r+1)·E/N) and a (token, expert) pair sorted by expert is also sorted by owning rank.
/// </summary>
public sealed record ExpertSharding(ICollectives Collectives, int Experts)
{
    public static ExpertSharding For(ICollectives collectives, DeepSeekV2Config config)
    {
        int experts = config.NRoutedExperts ?? throw new ArgumentException("expert parallelism needs a model with routed experts");
        if (experts % collectives.Size != 0)
            throw new ArgumentException($"{experts} routed experts do not split evenly over {collectives.Size} ranks; " +
                                        "use a number of ranks that divides n_routed_experts");
        return new ExpertSharding(collectives, experts);
    }

    public int PerRank => Experts / Collectives.Size;
    public int First => Collectives.Rank * PerRank;
    public bool Owns(int expert) => expert >= First && expert < First + PerRank;
    public int OwnerOf(int expert) => expert / PerRank;
}

/// <summary>
/// The row exchange of expert parallelism as an autograd function: forward sends rows to the ranks that own their
/// experts, backward sends the rows' gradients back along the reverse route. vars: rows, sendRows (long[]), recvRows
/// (long[]), the collectives, and a 0-element anchor that requires grad. The anchor makes the node part of the graph
/// on every rank even when this rank's rows do not require grad or are empty, so that every rank joins the backward
/// exchange; a rank that skipped it would leave the others waiting forever.
/// </summary>
internal sealed class RowExchange : autograd.SingleTensorFunction<RowExchange>
{
    public override string Name => nameof(RowExchange);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var rows = ((Tensor)vars[0]).contiguous();
        var sendRows = (long[])vars[1];
        var recvRows = (long[])vars[2];
        var collectives = (ICollectives)vars[3];
        ctx.save_data("send", sendRows);
        ctx.save_data("recv", recvRows);
        ctx.save_data("collectives", collectives);
        return Exchange(collectives, rows, sendRows, recvRows);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradient)
    {
        var collectives = (ICollectives)ctx.get_data("collectives");
        Tensor back = Exchange(collectives, gradient.contiguous(), (long[])ctx.get_data("recv"), (long[])ctx.get_data("send"));
        return [back, null!, null!, null!, null!];
    }

    private static Tensor Exchange(ICollectives collectives, Tensor rows, long[] sendRows, long[] recvRows)
    {
        long[] shape = rows.shape.ToArray();
        shape[0] = recvRows.Sum();
        Tensor received = empty(shape, rows.dtype, rows.device);
        collectives.AllToAllRows(rows, sendRows, received, recvRows);
        return received;
    }
}
