using TorchSharp;

namespace Tune.Tests.Model;

/// <summary>
/// Torch tests run one at a time with one libtorch thread: on a 2-core machine parallel test classes and OpenMP
/// threads would oversubscribe the cores.
/// </summary>
[CollectionDefinition("torch", DisableParallelization = true)]
public sealed class TorchCollection : ICollectionFixture<TorchThreads>;

public sealed class TorchThreads
{
    public TorchThreads() => torch.set_num_threads(1);
}
