using Tune.Model.Tokenization;

namespace Tune.Trainer.Data;

/// <summary>One document as a source holds it, before rendering and tokenization.</summary>
public abstract record TrainingRecord(RecordOrigin Origin);

public sealed record TextRecord(RecordOrigin Origin, string Text) : TrainingRecord(Origin);

public sealed record PromptCompletionRecord(RecordOrigin Origin, string Prompt, string Completion) : TrainingRecord(Origin);

public sealed record MessagesRecord(RecordOrigin Origin, IReadOnlyList<ChatMessage> Messages) : TrainingRecord(Origin);

public sealed record InstructionOutputRecord(RecordOrigin Origin, string Instruction, string Output) : TrainingRecord(Origin);
