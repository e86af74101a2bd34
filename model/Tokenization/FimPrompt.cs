namespace Tune.Model.Tokenization;

/// <summary>
/// DeepSeek-Coder-V2 fill-in-the-middle, prefix-suffix-middle order (the only mode the Coder-V2 paper trains):
/// <c>BOS &lt;｜fim▁begin｜&gt;{prefix}&lt;｜fim▁hole｜&gt;{suffix}&lt;｜fim▁end｜&gt;</c>, after which the model writes the middle
/// and then EOS. Markers go in by id and prefix/suffix are untrusted text, so code that mentions the markers
/// literally cannot rearrange the prompt.
/// </summary>
public static class FimPrompt
{
    public static EncodedPrompt Build(DeepSeekTokenizer tokenizer, string prefix, string suffix)
    {
        FimTokenIds fim = tokenizer.Fim
            ?? throw new InvalidOperationException($"{tokenizer.Source} has no FIM tokens ({FimTokenIds.BeginToken} ...)");
        var prompt = new PromptBuilder(tokenizer);
        if (tokenizer.AddBos) prompt.Control(tokenizer.BosId);
        return prompt.Control(fim.Begin).Text(prefix).Control(fim.Hole).Text(suffix).Control(fim.End).Build();
    }
}
