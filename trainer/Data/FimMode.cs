namespace Tune.Trainer.Data;

/// <summary>How a text document was rendered.</summary>
public enum FimMode
{
    /// <summary><c>BOS text EOS</c>.</summary>
    None,

    /// <summary>Prefix-suffix-middle: <c>BOS &lt;｜fim▁begin｜&gt; prefix &lt;｜fim▁hole｜&gt; suffix &lt;｜fim▁end｜&gt; middle EOS</c>.</summary>
    Psm,

    /// <summary>
    /// Suffix-prefix-middle, StarCoder's variant: <c>BOS &lt;｜fim▁begin｜&gt;&lt;｜fim▁hole｜&gt; suffix &lt;｜fim▁end｜&gt; prefix middle EOS</c>.
    /// </summary>
    Spm,
}
