using TorchSharp;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Tune.Model.Distributed;

/// <summary>
/// Open MPI (4.x or 5.x) through P/Invoke to libmpi.so.40, for CPU tensors; CUDA tensors are staged through host
/// memory (Debian's Open MPI is not CUDA-aware). Open MPI's handles (MPI_COMM_WORLD, MPI_INT64_T, MPI_SUM, …) are
/// the addresses of exported globals, so they come from the library's symbol table and no C shim is needed; MPICH's
/// integer handles would need another table and are not supported. Errors come back as return codes
/// (MPI_ERRORS_RETURN) and become exceptions naming the rank.
/// </summary>
public sealed unsafe class MpiCollectives : ICollectives
{
    private const string Library = "libmpi.so.40";
    private const int ThreadMultiple = 3;
    private static readonly IntPtr InPlace = 1; // Open MPI's mpi.h: #define MPI_IN_PLACE ((void *) 1)

    private readonly IntPtr _world, _byte, _int64, _float, _double, _sum;
    private bool _finalized;

    public int Rank { get; }
    public int Size { get; }
    public string Description { get; }

    private MpiCollectives(IntPtr library)
    {
        _world = NativeLibrary.GetExport(library, "ompi_mpi_comm_world");
        _byte = NativeLibrary.GetExport(library, "ompi_mpi_byte");
        _int64 = NativeLibrary.GetExport(library, "ompi_mpi_int64_t");
        _float = NativeLibrary.GetExport(library, "ompi_mpi_float");
        _double = NativeLibrary.GetExport(library, "ompi_mpi_double");
        _sum = NativeLibrary.GetExport(library, "ompi_mpi_op_sum");
        int initialized;
        MPI_Initialized(&initialized);
        if (initialized == 0)
        {
            int provided;
            int rc = MPI_Init_thread(null, null, ThreadMultiple, &provided);
            if (rc != 0) throw new InvalidOperationException($"MPI_Init_thread failed with code {rc}");
            // libtorch runs backward on worker threads for CUDA tensors, so collectives may come from any thread.
            if (provided < ThreadMultiple)
                throw new InvalidOperationException($"Open MPI granted thread level {provided}, but expert parallelism needs MPI_THREAD_MULTIPLE (3)");
        }
        Check(MPI_Comm_set_errhandler(_world, NativeLibrary.GetExport(library, "ompi_mpi_errors_return")), "MPI_Comm_set_errhandler");
        int rank, size;
        Check(MPI_Comm_rank(_world, &rank), "MPI_Comm_rank");
        Check(MPI_Comm_size(_world, &size), "MPI_Comm_size");
        Rank = rank;
        Size = size;
        Description = $"{LibraryVersion()} ({size} ranks)";
    }

    /// <summary>Initialises MPI (also outside mpirun, as a world of one) and joins MPI_COMM_WORLD.</summary>
    public static MpiCollectives Start()
    {
        if (!NativeLibrary.TryLoad(Library, typeof(MpiCollectives).Assembly, null, out IntPtr library))
            throw new InvalidOperationException($"{Library} not found: install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin; " +
                                           "check with `mpirun --version` and `ompi_info | grep MPI_THREAD_MULTIPLE`)");
        return new MpiCollectives(library);
    }

    public long[] AllToAll(long[] send)
    {
        if (send.Length % Size != 0) throw new ArgumentException($"all-to-all needs {Size} equal blocks; got {send.Length} values");
        var recv = new long[send.Length];
        fixed (long* s = send, r = recv)
            Check(MPI_Alltoall(s, send.Length / Size, _int64, r, send.Length / Size, _int64, _world), "MPI_Alltoall");
        return recv;
    }

    public void AllToAllRows(Tensor send, long[] sendRows, Tensor recv, long[] recvRows)
    {
        TensorMemory.CheckExchange(send, sendRows, recv, recvRows, Size);
        if (send.device_type != DeviceType.CPU)
        {
            using Tensor hostSend = send.cpu();
            using Tensor hostRecv = empty(recv.shape, recv.dtype);
            AllToAllRows(hostSend, sendRows, hostRecv, recvRows);
            recv.copy_(hostRecv);
            return;
        }
        // Counts and displacements are in rows of a committed row type, so they stay far below int's range.
        long rowBytes = TensorMemory.RowBytes(send);
        IntPtr rowType;
        Check(MPI_Type_contiguous(checked((int)rowBytes), _byte, &rowType), "MPI_Type_contiguous");
        try
        {
            Check(MPI_Type_commit(&rowType), "MPI_Type_commit");
            int[] sc = Ints(sendRows), rc = Ints(recvRows), sd = Offsets(sc), rd = Offsets(rc);
            fixed (int* scp = sc, rcp = rc, sdp = sd, rdp = rd)
                Check(MPI_Alltoallv((void*)TensorMemory.Address(send), scp, sdp, rowType,
                    (void*)TensorMemory.Address(recv), rcp, rdp, rowType, _world), "MPI_Alltoallv");
        }
        finally
        {
            MPI_Type_free(&rowType);
        }
    }

    public void AllReduceSum(Tensor tensor)
    {
        TensorMemory.CheckReducible(tensor);
        if (tensor.device_type != DeviceType.CPU)
        {
            using Tensor host = tensor.cpu();
            AllReduceSum(host);
            tensor.copy_(host);
            return;
        }
        IntPtr type = tensor.dtype switch { ScalarType.Float32 => _float, ScalarType.Float64 => _double, _ => _int64 };
        Check(MPI_Allreduce((void*)InPlace, (void*)TensorMemory.Address(tensor), checked((int)tensor.numel()), type, _sum, _world), "MPI_Allreduce");
    }

    public void Broadcast(Tensor tensor, int root)
    {
        if (root < 0 || root >= Size) throw new ArgumentOutOfRangeException(nameof(root), root, $"no rank {root} among {Size}");
        if (tensor.device_type != DeviceType.CPU)
        {
            using Tensor host = tensor.cpu();
            Broadcast(host, root);
            tensor.copy_(host);
            return;
        }
        Check(MPI_Bcast((void*)TensorMemory.Address(tensor), checked((int)(tensor.numel() * tensor.element_size())), _byte, root, _world), "MPI_Bcast");
    }

    public void Barrier() => Check(MPI_Barrier(_world), "MPI_Barrier");

    public void Abort(int exitCode)
    {
        MPI_Abort(_world, exitCode);
        Environment.Exit(exitCode);
    }

    /// <summary>Finalises MPI; after that no MPI call may be made in this process, so this is the job's last word.</summary>
    public void Dispose()
    {
        if (_finalized) return;
        _finalized = true;
        MPI_Finalize();
    }

    private void Check(int code, string call)
    {
        if (code == 0) return;
        byte* text = stackalloc byte[256]; // MPI_MAX_ERROR_STRING
        int length;
        string message = MPI_Error_string(code, text, &length) == 0 ? Marshal.PtrToStringUTF8((IntPtr)text, length) : $"error {code}";
        string who = Size == 0 ? "MPI" : $"rank {Rank}/{Size}";
        throw new InvalidOperationException($"{who}: {call} failed: {message}");
    }

    private static string LibraryVersion()
    {
        byte* text = stackalloc byte[256]; // MPI_MAX_LIBRARY_VERSION_STRING is 256 in Open MPI
        int length;
        if (MPI_Get_library_version(text, &length) != 0) return "Open MPI";
        string full = Marshal.PtrToStringUTF8((IntPtr)text, length);
        int comma = full.IndexOf(',');
        return comma > 0 ? full[..comma] : full.Trim();
    }

    private static int[] Ints(long[] counts) => counts.Select(c => checked((int)c)).ToArray();

    private static int[] Offsets(int[] counts)
    {
        var offsets = new int[counts.Length];
        for (int i = 1; i < counts.Length; i++) offsets[i] = checked(offsets[i - 1] + counts[i - 1]);
        return offsets;
    }

    [DllImport(Library)] private static extern int MPI_Initialized(int* flag);
    [DllImport(Library)] private static extern int MPI_Init_thread(int* argc, byte*** argv, int required, int* provided);
    [DllImport(Library)] private static extern int MPI_Finalize();
    [DllImport(Library)] private static extern int MPI_Abort(IntPtr comm, int code);
    [DllImport(Library)] private static extern int MPI_Comm_set_errhandler(IntPtr comm, IntPtr handler);
    [DllImport(Library)] private static extern int MPI_Comm_rank(IntPtr comm, int* rank);
    [DllImport(Library)] private static extern int MPI_Comm_size(IntPtr comm, int* size);
    [DllImport(Library)] private static extern int MPI_Error_string(int code, byte* text, int* length);
    [DllImport(Library)] private static extern int MPI_Get_library_version(byte* text, int* length);
    [DllImport(Library)] private static extern int MPI_Barrier(IntPtr comm);
    [DllImport(Library)] private static extern int MPI_Bcast(void* buffer, int count, IntPtr type, int root, IntPtr comm);
    [DllImport(Library)] private static extern int MPI_Allreduce(void* send, void* recv, int count, IntPtr type, IntPtr op, IntPtr comm);
    [DllImport(Library)] private static extern int MPI_Alltoall(void* send, int sendCount, IntPtr sendType, void* recv, int recvCount, IntPtr recvType, IntPtr comm);
    [DllImport(Library)]
    private static extern int MPI_Alltoallv(void* send, int* sendCounts, int* sendOffsets, IntPtr sendType,
        void* recv, int* recvCounts, int* recvOffsets, IntPtr recvType, IntPtr comm);
    [DllImport(Library)] private static extern int MPI_Type_contiguous(int count, IntPtr oldType, IntPtr* newType);
    [DllImport(Library)] private static extern int MPI_Type_commit(IntPtr* type);
    [DllImport(Library)] private static extern int MPI_Type_free(IntPtr* type);
}
