namespace Tune.Trainer.Data;

/// <summary>What a training record holds, and so how it is rendered and which of its tokens are targets.</summary>
public enum RecordKind
{
    /// <summary><c>text</c>: continued pre-training on code or prose; every token is a target; FIM applies.</summary>
    Text,

    /// <summary><c>prompt</c> and <c>completion</c>: loss on the completion only.</summary>
    PromptCompletion,

    /// <summary><c>messages</c>: a DeepSeek-Coder-V2 chat; loss on the assistant turns only.</summary>
    Messages,

    /// <summary><c>instruction</c> and <c>output</c>: DeepSeek-Coder's own fine-tune template; loss on the output only.</summary>
    InstructionOutput,
}
