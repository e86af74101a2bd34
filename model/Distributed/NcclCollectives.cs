using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Tune.Model.Distributed;

/// <summary>
/// NCCL for CUDA tensors, through P/Invoke to libnccl.so.2 located at run time ($TUNE_NCCL_LIBRARY, else the loader's
/// path). MPI bootstraps it: rank 0 makes the unique id and broadcasts it, and the host-side row counts go over MPI.
/// The all-to-all is grouped ncclSend/ncclRecv (ncclAlltoAll is fixed-count and only exists since 2.28). Everything
/// runs on the legacy default stream (stream 0): TorchSharp exposes no CUDA streams, so its kernels run there too and
/// the collectives are ordered with them without events. Each rank must see exactly one GPU as cuda:0
/// (<see cref="Launch.SelectGpuForRank"/>), since two ranks on one GPU may hang NCCL.
/// </summary>
public sealed unsafe class NcclCollectives : ICollectives
{
    public const string LibraryVariable = "TUNE_NCCL_LIBRARY";
    private const string DefaultLibrary = "libnccl.so.2";

    private readonly MpiCollectives _mpi;
    private readonly Api _api;
    private IntPtr _comm;

    public int Rank => _mpi.Rank;
    public int Size => _mpi.Size;
    public string Description { get; }

    private NcclCollectives(MpiCollectives mpi, Api api)
    {
        _mpi = mpi;
        _api = api;
        // The unique id travels by value (a 128-byte struct), not as a pointer: declaring it byte[] would hand NCCL an
        // address and each rank would read a different id.
        UniqueId id = default;
        if (mpi.Rank == 0) Check(_api.GetUniqueId(&id), "ncclGetUniqueId");
        using (Tensor bytes = empty(sizeof(UniqueId), ScalarType.Byte))
        {
            if (mpi.Rank == 0) new Span<byte>(&id, sizeof(UniqueId)).CopyTo(bytes.bytes);
            mpi.Broadcast(bytes, 0);
            bytes.bytes.CopyTo(new Span<byte>(&id, sizeof(UniqueId)));
        }
        IntPtr comm;
        Check(_api.CommInitRank(&comm, mpi.Size, id, mpi.Rank), "ncclCommInitRank");
        _comm = comm;
        int version;
        Description = _api.GetVersion(&version) == 0 ? $"NCCL {version / 10000}.{version / 100 % 100}.{version % 100} ({Size} ranks)" : $"NCCL ({Size} ranks)";
    }

    /// <summary>
    /// Finds libnccl (<paramref name="path"/>, else $TUNE_NCCL_LIBRARY, else the loader's path) and binds its entry
    /// points. Done before MPI starts, so that a machine without NCCL fails at once with what to install.
    /// </summary>
    public static Library LoadLibrary(string? path = null)
    {
        path ??= Environment.GetEnvironmentVariable(LibraryVariable) ?? DefaultLibrary;
        if (!NativeLibrary.TryLoad(path, out IntPtr handle))
            throw new InvalidOperationException(
                $"{path} not found: install NCCL (NVIDIA's CUDA apt repository: apt-get install libnccl2; or pip install " +
                $"nvidia-nccl-cu12 and set {LibraryVariable} to its lib/libnccl.so.2), or train on the CPU over Open MPI");
        return new Library(Api.Bind(handle));
    }

    /// <summary>Joins every rank of <paramref name="mpi"/>'s world into one NCCL communicator.</summary>
    public static NcclCollectives Start(MpiCollectives mpi, Library library) => new(mpi, library.Api);

    /// <summary>A loaded libnccl.</summary>
    public sealed class Library
    {
        internal Library(Api api) => Api = api;

        internal Api Api { get; }
    }

    public long[] AllToAll(long[] send) => _mpi.AllToAll(send);

    public void AllToAllRows(Tensor send, long[] sendRows, Tensor recv, long[] recvRows)
    {
        TensorMemory.CheckExchange(send, sendRows, recv, recvRows, Size);
        long rowBytes = TensorMemory.RowBytes(send);
        byte* s = (byte*)TensorMemory.Address(send), r = (byte*)TensorMemory.Address(recv);
        Check(_api.GroupStart(), "ncclGroupStart");
        long sendOffset = 0, recvOffset = 0;
        for (int peer = 0; peer < Size; peer++)
        {
            if (sendRows[peer] > 0)
                Check(_api.Send(s + sendOffset * rowBytes, (nuint)(sendRows[peer] * rowBytes), Uint8, peer, _comm, IntPtr.Zero), "ncclSend");
            if (recvRows[peer] > 0)
                Check(_api.Recv(r + recvOffset * rowBytes, (nuint)(recvRows[peer] * rowBytes), Uint8, peer, _comm, IntPtr.Zero), "ncclRecv");
            sendOffset += sendRows[peer];
            recvOffset += recvRows[peer];
        }
        Check(_api.GroupEnd(), "ncclGroupEnd");
    }

    public void AllReduceSum(Tensor tensor)
    {
        TensorMemory.CheckReducible(tensor);
        int type = tensor.dtype switch { ScalarType.Float32 => Float32, ScalarType.Float64 => Float64, _ => Int64 };
        void* p = (void*)TensorMemory.Address(tensor);
        Check(_api.AllReduce(p, p, (nuint)tensor.numel(), type, Sum, _comm, IntPtr.Zero), "ncclAllReduce");
    }

    public void Broadcast(Tensor tensor, int root)
    {
        void* p = (void*)TensorMemory.Address(tensor);
        Check(_api.Broadcast(p, p, (nuint)(tensor.numel() * tensor.element_size()), Uint8, root, _comm, IntPtr.Zero), "ncclBroadcast");
    }

    public void Barrier() => _mpi.Barrier();

    public void Abort(int exitCode)
    {
        if (_comm != IntPtr.Zero) _api.CommAbort(_comm);
        _comm = IntPtr.Zero;
        _mpi.Abort(exitCode);
    }

    public void Dispose()
    {
        if (_comm != IntPtr.Zero) _api.CommDestroy(_comm);
        _comm = IntPtr.Zero;
        _mpi.Dispose();
    }

    private void Check(int result, string call)
    {
        if (result == 0) return;
        string message = Marshal.PtrToStringUTF8(_api.GetErrorString(result)) ?? $"error {result}";
        throw new InvalidOperationException($"rank {Rank}/{Size}: {call} failed: {message}");
    }

    // ncclDataType_t and ncclRedOp_t values from nccl.h (stable since 2.x).
    private const int Uint8 = 1, Int64 = 4, Float32 = 7, Float64 = 8, Sum = 0;

    [StructLayout(LayoutKind.Sequential)]
    internal struct UniqueId
    {
        public fixed byte Internal[128];
    }

    /// <summary>The entry points, bound from the handle so that the library's location is chosen at run time.</summary>
    internal sealed class Api
    {
        public delegate* unmanaged[Cdecl]<UniqueId*, int> GetUniqueId;
        public delegate* unmanaged[Cdecl]<IntPtr*, int, UniqueId, int, int> CommInitRank;
        public delegate* unmanaged[Cdecl]<IntPtr, int> CommDestroy;
        public delegate* unmanaged[Cdecl]<IntPtr, int> CommAbort;
        public delegate* unmanaged[Cdecl]<int*, int> GetVersion;
        public delegate* unmanaged[Cdecl]<int, IntPtr> GetErrorString;
        public delegate* unmanaged[Cdecl]<int> GroupStart;
        public delegate* unmanaged[Cdecl]<int> GroupEnd;
        public delegate* unmanaged[Cdecl]<void*, nuint, int, int, IntPtr, IntPtr, int> Send;
        public delegate* unmanaged[Cdecl]<void*, nuint, int, int, IntPtr, IntPtr, int> Recv;
        public delegate* unmanaged[Cdecl]<void*, void*, nuint, int, int, IntPtr, IntPtr, int> AllReduce;
        public delegate* unmanaged[Cdecl]<void*, void*, nuint, int, int, IntPtr, IntPtr, int> Broadcast;

        public static Api Bind(IntPtr library) => new()
        {
            GetUniqueId = (delegate* unmanaged[Cdecl]<UniqueId*, int>)NativeLibrary.GetExport(library, "ncclGetUniqueId"),
            CommInitRank = (delegate* unmanaged[Cdecl]<IntPtr*, int, UniqueId, int, int>)NativeLibrary.GetExport(library, "ncclCommInitRank"),
            CommDestroy = (delegate* unmanaged[Cdecl]<IntPtr, int>)NativeLibrary.GetExport(library, "ncclCommDestroy"),
            CommAbort = (delegate* unmanaged[Cdecl]<IntPtr, int>)NativeLibrary.GetExport(library, "ncclCommAbort"),
            GetVersion = (delegate* unmanaged[Cdecl]<int*, int>)NativeLibrary.GetExport(library, "ncclGetVersion"),
            GetErrorString = (delegate* unmanaged[Cdecl]<int, IntPtr>)NativeLibrary.GetExport(library, "ncclGetErrorString"),
            GroupStart = (delegate* unmanaged[Cdecl]<int>)NativeLibrary.GetExport(library, "ncclGroupStart"),
            GroupEnd = (delegate* unmanaged[Cdecl]<int>)NativeLibrary.GetExport(library, "ncclGroupEnd"),
            Send = (delegate* unmanaged[Cdecl]<void*, nuint, int, int, IntPtr, IntPtr, int>)NativeLibrary.GetExport(library, "ncclSend"),
            Recv = (delegate* unmanaged[Cdecl]<void*, nuint, int, int, IntPtr, IntPtr, int>)NativeLibrary.GetExport(library, "ncclRecv"),
            AllReduce = (delegate* unmanaged[Cdecl]<void*, void*, nuint, int, int, IntPtr, IntPtr, int>)NativeLibrary.GetExport(library, "ncclAllReduce"),
            Broadcast = (delegate* unmanaged[Cdecl]<void*, void*, nuint, int, int, IntPtr, IntPtr, int>)NativeLibrary.GetExport(library, "ncclBroadcast"),
        };
    }
}
