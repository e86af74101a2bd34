using TorchSharp;
using static TorchSharp.torch;

namespace Tune.Model;

/// <summary>Where and in which precision a model runs, parsed from the --device and --dtype options.</summary>
public sealed record TorchRuntime(Device Device, ScalarType DType)
{
    public static readonly string[] DeviceChoices = ["auto", "cpu", "cuda", "cuda:N"];
    public static readonly string[] DTypeChoices = ["auto", "f32", "bf16", "f16"];

    public static TorchRuntime Cpu { get; } = new(CPU, ScalarType.Float32);

    /// <summary>
    /// "auto" takes the first GPU when CUDA is available, else the CPU. Devices are built with the Device constructor
    /// because torch.device("cuda:1") throws on a CPU-only build before we could say what is wrong.
    /// </summary>
    public static Device ParseDevice(string text)
    {
        string s = text.Trim().ToLowerInvariant();
        if (s == "cpu") return CPU;
        if (s == "auto") return cuda.is_available() ? new Device(DeviceType.CUDA, 0) : CPU;
        if (s == "cuda" || s.StartsWith("cuda:", StringComparison.Ordinal))
        {
            int index = 0;
            if (s.Length > 4 && (!int.TryParse(s.AsSpan(5), out index) || index < 0))
                throw new ArgumentException($"--device {text}: expected cuda:N with N a GPU index");
            if (!cuda.is_available())
                throw new ArgumentException($"--device {text}: CUDA is not available (this build uses the CPU libtorch; " +
                                            "build with -p:TorchBackend=cuda on a machine with an NVIDIA driver)");
            int count = cuda.device_count();
            if (index >= count) throw new ArgumentException($"--device {text}: only {count} CUDA device(s) are visible");
            return new Device(DeviceType.CUDA, index);
        }
        throw new ArgumentException($"--device {text}: expected one of {string.Join(", ", DeviceChoices)}");
    }

    public static ScalarType ParseDType(string text) => text.Trim().ToLowerInvariant() switch
    {
        "f32" or "float32" => ScalarType.Float32,
        "bf16" or "bfloat16" => ScalarType.BFloat16,
        "f16" or "float16" => ScalarType.Float16,
        _ => throw new ArgumentException($"--dtype {text}: expected one of {string.Join(", ", DTypeChoices)}"),
    };

    /// <summary>The runtime for --device and --dtype; dtype "auto" is bf16 on a GPU and f32 on the CPU, where libtorch's
    /// bf16 kernels are slow without AVX-512 BF16 and its bf16 matrix-vector product is slower than f32 even with it.</summary>
    public static TorchRuntime Parse(string device, string dtype)
    {
        Device parsed = ParseDevice(device);
        ScalarType type = dtype.Trim().Equals("auto", StringComparison.OrdinalIgnoreCase)
            ? parsed.type == DeviceType.CUDA ? ScalarType.BFloat16 : ScalarType.Float32
            : ParseDType(dtype);
        var runtime = new TorchRuntime(parsed, type);
        if (runtime.Device.type == DeviceType.CPU && runtime.DType == ScalarType.Float16)
            Console.Error.WriteLine("warning: f16 on the CPU is very slow in libtorch (no f16 GEMM kernels); prefer bf16 or f32");
        return runtime;
    }

    public static string Name(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "f32",
        ScalarType.BFloat16 => "bf16",
        ScalarType.Float16 => "f16",
        _ => dtype.ToString(),
    };

    public override string ToString() => $"{Device} {Name(DType)}";
}
