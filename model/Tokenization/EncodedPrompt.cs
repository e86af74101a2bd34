namespace Tune.Model.Tokenization;

/// <summary>A prompt as token ids and as the text those ids decode to (control tokens written out).</summary>
public sealed record EncodedPrompt(int[] Ids, string Text);
