namespace Tune.Formats;

/// <summary>
/// A Hugging Face model directory: <c>config.json</c> plus the weights, either sharded with
/// <c>model.safetensors.index.json</c>, a single <c>model.safetensors</c>, or (with neither) every
/// <c>*.safetensors</c> file in the directory. All shards stay memory-mapped until disposed.
/// </summary>
public sealed class CheckpointDirectory : IDisposable
{
    public const string ConfigFileName = "config.json";

    private readonly IReadOnlyList<SafetensorsFile> _files;
    private readonly Dictionary<string, (SafetensorsFile File, TensorInfo Info)> _byName;

    private CheckpointDirectory(string directory, DeepSeekV2Config config, IReadOnlyList<SafetensorsFile> files,
        Dictionary<string, (SafetensorsFile, TensorInfo)> byName)
    {
        Directory = directory;
        Config = config;
        _files = files;
        _byName = byName;
        ShardFiles = files.Select(f => f.Path).ToArray();
    }

    public string Directory { get; }

    public DeepSeekV2Config Config { get; }

    /// <summary>Full paths of the safetensors files, in file-name order.</summary>
    public IReadOnlyList<string> ShardFiles { get; }

    /// <summary>Every tensor, shard by shard in <see cref="ShardFiles"/> order, each shard in header order.</summary>
    public IEnumerable<TensorInfo> Tensors => _files.SelectMany(f => f.Tensors);

    public static CheckpointDirectory Open(string directory)
    {
        if (!System.IO.Directory.Exists(directory))
            throw new DirectoryNotFoundException($"{directory}: no such checkpoint directory");
        string configPath = Path.Combine(directory, ConfigFileName);
        if (!File.Exists(configPath))
            throw new FileNotFoundException($"{directory}: no {ConfigFileName} in the checkpoint directory", configPath);
        DeepSeekV2Config config = DeepSeekV2Config.Load(configPath);

        string indexPath = Path.Combine(directory, SafetensorsIndex.FileName);
        string singlePath = Path.Combine(directory, SafetensorsWriter.SingleFileName);
        var files = new List<SafetensorsFile>();
        try
        {
            Dictionary<string, (SafetensorsFile, TensorInfo)> byName;
            if (File.Exists(indexPath))
            {
                byName = OpenIndexed(directory, indexPath, files);
            }
            else
            {
                string[] paths = File.Exists(singlePath)
                    ? [singlePath]
                    : System.IO.Directory.GetFiles(directory, "*.safetensors").Order(StringComparer.Ordinal).ToArray();
                if (paths.Length == 0)
                    throw new FileNotFoundException(
                        $"{directory}: no {SafetensorsIndex.FileName}, {SafetensorsWriter.SingleFileName} or other *.safetensors file", singlePath);
                byName = OpenAll(directory, paths, files);
            }
            return new CheckpointDirectory(directory, config, files, byName);
        }
        catch
        {
            foreach (SafetensorsFile file in files) file.Dispose();
            throw;
        }
    }

    public bool Contains(string name) => _byName.ContainsKey(name);

    public (SafetensorsFile File, TensorInfo Info) Locate(string name) =>
        _byName.TryGetValue(name, out var found)
            ? found
            : throw new KeyNotFoundException($"{Directory}: the checkpoint has no tensor named \"{name}\"");

    public float[] ReadFloat32(string name)
    {
        (SafetensorsFile file, TensorInfo info) = Locate(name);
        float[] values = new float[info.ElementCount];
        file.ReadFloat32(info, values);
        return values;
    }

    public void Dispose()
    {
        foreach (SafetensorsFile file in _files) file.Dispose();
    }

    // The index is the authority: file names come from it, and it must agree with the shards tensor by tensor, since
    // a stale or hand-edited index would otherwise load some weights from the wrong file or not at all.
    private static Dictionary<string, (SafetensorsFile, TensorInfo)> OpenIndexed(string directory, string indexPath, List<SafetensorsFile> files)
    {
        IReadOnlyDictionary<string, string> weightMap = SafetensorsIndex.ReadWeightMap(indexPath);
        var byName = new Dictionary<string, (SafetensorsFile, TensorInfo)>(StringComparer.Ordinal);
        foreach (string fileName in weightMap.Values.Distinct().Order(StringComparer.Ordinal))
        {
            string path = Path.Combine(directory, fileName);
            if (!File.Exists(path))
                throw new FileNotFoundException($"{indexPath}: lists shard {fileName}, which is not in the directory", path);
            SafetensorsFile file = SafetensorsFile.Open(path);
            files.Add(file);
            foreach (TensorInfo info in file.Tensors)
            {
                if (!weightMap.TryGetValue(info.Name, out string? listed))
                    throw new InvalidDataException($"{indexPath}: tensor \"{info.Name}\" is in {fileName} but not in weight_map");
                if (listed != fileName)
                    throw new InvalidDataException($"{indexPath}: tensor \"{info.Name}\" is in {fileName} but weight_map puts it in {listed}");
                byName.Add(info.Name, (file, info));
            }
        }
        foreach ((string name, string fileName) in weightMap)
        {
            if (!byName.ContainsKey(name))
                throw new InvalidDataException($"{indexPath}: weight_map puts tensor \"{name}\" in {fileName}, which has no such tensor");
        }
        return byName;
    }

    private static Dictionary<string, (SafetensorsFile, TensorInfo)> OpenAll(string directory, string[] paths, List<SafetensorsFile> files)
    {
        var byName = new Dictionary<string, (SafetensorsFile, TensorInfo)>(StringComparer.Ordinal);
        foreach (string path in paths)
        {
            SafetensorsFile file = SafetensorsFile.Open(path);
            files.Add(file);
            foreach (TensorInfo info in file.Tensors)
            {
                if (byName.TryGetValue(info.Name, out var earlier))
                    throw new InvalidDataException(
                        $"{directory}: tensor \"{info.Name}\" is in both {Path.GetFileName(earlier.Item1.Path)} and {Path.GetFileName(path)}, and there is no index to choose");
                byName.Add(info.Name, (file, info));
            }
        }
        return byName;
    }
}
