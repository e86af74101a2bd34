using Tune.Formats;
using Tune.Quantize;

namespace Tune.Convert;

/// <summary>
/// A Hugging Face DeepSeek-V2 checkpoint → GGUF <c>deepseek2</c> conversion. <see cref="Prepare"/> opens and checks
/// everything (config, every tensor's name, shape and dtype, the tokenizer) and plans the file, so bad input fails
/// before a byte is written and the caller can show the warnings first; <see cref="Write"/> then streams the
/// tensors one piece at a time into a temporary file that is renamed to the output name only when complete.
/// </summary>
public sealed class HfToGgufConversion : IDisposable
{
    private readonly CheckpointDirectory _checkpoint;

    private HfToGgufConversion(ConvertOptions options, CheckpointDirectory checkpoint, GgmlType type, LlamaCppCompatibility compat,
        IReadOnlyList<PlannedTensor> tensors, IReadOnlyList<KeyValuePair<string, GgufValue>> metadata, IReadOnlyList<string> notes)
    {
        Options = options;
        _checkpoint = checkpoint;
        Type = type;
        Compatibility = compat;
        Tensors = tensors;
        Metadata = metadata;
        Notes = notes;
    }

    public ConvertOptions Options { get; }

    /// <summary>The output type of the weight matrices (norms and routers stay F32).</summary>
    public GgmlType Type { get; }

    public LlamaCppCompatibility Compatibility { get; }

    public IReadOnlyList<PlannedTensor> Tensors { get; }

    public IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata { get; }

    /// <summary>What this file says differently from llama.cpp's converter, and why.</summary>
    public IReadOnlyList<string> Notes { get; }

    /// <summary>What llama.cpp will still compute differently from the HF model.</summary>
    public IReadOnlyList<string> Warnings => Compatibility.Warnings;

    public long ByteCount => Tensors.Sum(t => t.ByteLength);

    public static HfToGgufConversion Prepare(ConvertOptions options)
    {
        CheckpointDirectory checkpoint = CheckpointDirectory.Open(options.ModelDirectory);
        try
        {
            DeepSeekV2Config c = checkpoint.Config;
            CheckpointCheck.Validate(checkpoint);
            TokenizerJson tokenizer = LoadTokenizer(options.ModelDirectory);
            LlamaCppCompatibility compat = LlamaCppCompatibility.For(c);
            GgmlType type = options.Type ?? OutputTypes.Lossless(checkpoint.Locate("model.embed_tokens.weight").Info.DType);

            // llama.cpp's converter reads shard files in name order and each shard's tensors in name order.
            var shardIndex = checkpoint.ShardFiles.Select((path, i) => (path, i)).ToDictionary(p => p.path, p => p.i);
            var readOrder = checkpoint.Tensors
                .OrderBy(t => shardIndex[checkpoint.Locate(t.Name).File.Path])
                .ThenBy(t => t.Name, StringComparer.Ordinal)
                .Select((t, i) => (t.Name, i))
                .ToDictionary(p => p.Name, p => p.i, StringComparer.Ordinal);
            var notes = new List<string>(compat.Notes);
            IReadOnlyList<PlannedTensor> tensors = DeepSeek2TensorMap.Plan(c, options.Layout, type, compat, name => readOrder[name], notes);

            string name = options.Name ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.ModelDirectory)));
            var metadata = DeepSeek2Metadata.Model(c, options.Layout, type, name, DeepSeek2Metadata.SizeLabel(tensors), compat);
            metadata.AddRange(GgufVocabulary.Metadata(tokenizer, c, tokenizer.ChatTemplate ?? ReadChatTemplateFile(options.ModelDirectory)));
            return new HfToGgufConversion(options, checkpoint, type, compat, tensors, metadata, notes);
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    /// <summary>Writes the file; on any failure or cancellation nothing is left under the output name.</summary>
    public void Write(Action<ConvertProgress>? progress = null, CancellationToken cancellation = default) =>
        Write(Tensors, Metadata, new TensorQuantizer(Environment.ProcessorCount, measureError: false), progress, cancellation);

    /// <summary>
    /// Writes <paramref name="tensors"/> (this conversion's, perhaps retyped and reordered) with <paramref name="metadata"/>
    /// to the output path; returns each tensor's encoding error, in the order given.
    /// </summary>
    internal TensorQuantizer.ErrorSums[] Write(IReadOnlyList<PlannedTensor> tensors, IReadOnlyList<KeyValuePair<string, GgufValue>> metadata,
        TensorQuantizer encoder, Action<ConvertProgress>? progress, CancellationToken cancellation)
    {
        string? directory = Path.GetDirectoryName(Path.GetFullPath(Options.OutputPath));
        if (directory is not null && !Directory.Exists(directory))
            throw new DirectoryNotFoundException($"--out {Options.OutputPath}: the directory {directory} does not exist");
        long total = tensors.Sum(t => t.ByteLength), done = 0;
        int tensorsDone = 0;
        var errors = new TensorQuantizer.ErrorSums[tensors.Count];
        var streamer = new TensorStreamer(_checkpoint, Compatibility, encoder, n =>
        {
            done += n;
            progress?.Invoke(new ConvertProgress(tensorsDone, tensors.Count, done, total));
        }, cancellation);
        var sources = tensors.Select((t, i) => new GgufTensorSource(t.Name, t.Type, t.Dimensions, sink =>
        {
            errors[i] = streamer.Write(t, sink);
            tensorsDone++;
            progress?.Invoke(new ConvertProgress(tensorsDone, tensors.Count, done, total));
        })).ToArray();
        GgufWriter.Write(Options.OutputPath, metadata, sources, cancellation);
        return errors;
    }

    public void Dispose() => _checkpoint.Dispose();

    private static TokenizerJson LoadTokenizer(string directory)
    {
        string json = Path.Combine(directory, "tokenizer.json");
        if (!File.Exists(json))
            throw new FileNotFoundException($"{directory}: no tokenizer.json; a GGUF file carries the vocabulary, so the tokenizer is required", json);
        string config = Path.Combine(directory, "tokenizer_config.json");
        return TokenizerJson.Load(json, File.Exists(config) ? config : null);
    }

    // Newer Hugging Face checkpoints keep the template next to tokenizer_config.json instead of inside it.
    private static string? ReadChatTemplateFile(string directory)
    {
        string jinja = Path.Combine(directory, "chat_template.jinja");
        return File.Exists(jinja) ? File.ReadAllText(jinja) : null;
    }
}
