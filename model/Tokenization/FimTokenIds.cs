namespace Tune.Model.Tokenization;

/// <summary>
/// DeepSeek-Coder-V2's fill-in-the-middle markers. The names are DeepSeek's, not their roles: <see cref="Hole"/>
/// starts the suffix and <see cref="End"/> is where the middle begins (llama.cpp: FIM_PRE, FIM_SUF, FIM_MID).
/// </summary>
public sealed record FimTokenIds(int Begin, int Hole, int End)
{
    public const string BeginToken = "<｜fim▁begin｜>";
    public const string HoleToken = "<｜fim▁hole｜>";
    public const string EndToken = "<｜fim▁end｜>";
}
