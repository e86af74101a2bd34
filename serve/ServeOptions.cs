namespace Tune.Serve;

/// <summary>
/// What `tune serve` runs: the model (an HF checkpoint directory or a .gguf file), named PEFT adapters, where to listen
/// and how much to hold. Port 0 lets the OS choose (tests read the bound port back).
/// </summary>
public sealed record ServeOptions
{
    public required string ModelPath { get; init; }

    /// <summary>Adapter name (the `model` a request names) → PEFT adapter directory.</summary>
    public IReadOnlyDictionary<string, string> Adapters { get; init; } = new Dictionary<string, string>();

    public string Host { get; init; } = "127.0.0.1";
    public int Port { get; init; } = 8080;

    /// <summary>Tokens per slot (prompt + generated); null = the model's context, capped at 4096.</summary>
    public int? Context { get; init; }

    public int Parallel { get; init; } = 1;

    /// <summary>Requests allowed to wait for a free slot; one more gets 429.</summary>
    public int MaxQueued { get; init; } = DefaultMaxQueued;

    public string? ApiKey { get; init; }
    public int? Threads { get; init; }
    public string Device { get; init; } = "auto";
    public string DType { get; init; } = "auto";

    public const int DefaultContextCap = 4096;
    public const int DefaultMaxQueued = 32;

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(ModelPath)) throw new ArgumentException("--model is required");
        if (Port is < 0 or > 65535) throw new ArgumentException($"--port {Port}: expected 0..65535");
        if (Context is < 2) throw new ArgumentException($"--ctx {Context}: the context needs at least 2 tokens");
        if (Parallel < 1) throw new ArgumentException($"--parallel {Parallel}: at least one slot is needed");
        if (MaxQueued < 0) throw new ArgumentException($"--queue {MaxQueued}: must be >= 0");
        if (Threads is < 1) throw new ArgumentException($"--threads {Threads}: at least one thread is needed");
        if (ApiKey is { Length: 0 }) throw new ArgumentException("--api-key must not be empty");
        foreach ((string name, string dir) in Adapters)
        {
            if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException($"--adapter ={dir}: the adapter needs a name (NAME=DIR)");
            if (string.IsNullOrWhiteSpace(dir)) throw new ArgumentException($"--adapter {name}=: the adapter needs a directory (NAME=DIR)");
        }
    }
}
