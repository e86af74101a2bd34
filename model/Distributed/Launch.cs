using System.Runtime.InteropServices;
using TorchSharp;

namespace Tune.Model.Distributed;

/// <summary>How a process finds its place in a job: under mpirun it is one rank of an Open MPI world, otherwise alone.</summary>
public static class Launch
{
    /// <summary>True when this process was started by mpirun (Open MPI sets OMPI_COMM_WORLD_SIZE in every rank).</summary>
    public static bool UnderMpirun => Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is not null;

    /// <summary>
    /// The collectives for tensors on <paramref name="device"/>: local outside mpirun (MPI is then never loaded), NCCL
    /// for CUDA and Open MPI for the CPU under mpirun.
    /// </summary>
    public static ICollectives Collectives(torch.Device device)
    {
        if (!UnderMpirun) return new LocalCollectives();
        if (device.type != DeviceType.CUDA) return MpiCollectives.Start();
        NcclCollectives.Library nccl = NcclCollectives.LoadLibrary();
        MpiCollectives mpi = MpiCollectives.Start();
        try
        {
            return NcclCollectives.Start(mpi, nccl);
        }
        catch
        {
            mpi.Dispose();
            throw;
        }
    }

    /// <summary>
    /// One GPU per rank: narrows CUDA_VISIBLE_DEVICES to the entry of this rank's index on its node (of the list given,
    /// or of 0, 1, …), so that the rank's GPU is cuda:0. Must run before anything initialises CUDA. .NET's
    /// Environment.SetEnvironmentVariable does not reach native getenv on Linux, so the variable is set through libc.
    /// Returns the device chosen, or null outside mpirun.
    /// </summary>
    public static string? SelectGpuForRank()
    {
        string? localRank = Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_LOCAL_RANK");
        if (localRank is null) return null;
        int index = int.Parse(localRank, System.Globalization.CultureInfo.InvariantCulture);
        string? visible = Environment.GetEnvironmentVariable("CUDA_VISIBLE_DEVICES");
        string[] devices = string.IsNullOrWhiteSpace(visible) ? [] : visible.Split(',', StringSplitOptions.TrimEntries);
        if (devices.Length > 0 && index >= devices.Length)
            throw new InvalidOperationException($"rank with local index {index}: CUDA_VISIBLE_DEVICES={visible} lists only {devices.Length} GPU(s); " +
                                                "start at most one rank per GPU on each node");
        string chosen = devices.Length > 0 ? devices[index] : localRank;
        if (setenv("CUDA_VISIBLE_DEVICES", chosen, 1) != 0) throw new InvalidOperationException("setenv(CUDA_VISIBLE_DEVICES) failed");
        Environment.SetEnvironmentVariable("CUDA_VISIBLE_DEVICES", chosen);
        return chosen;
    }

    [DllImport("libc", CharSet = CharSet.Ansi)]
    private static extern int setenv(string name, string value, int overwrite);
}
