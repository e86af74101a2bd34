using Tune.Model.Tokenization;
using Tune.Trainer.Data;
using static Tune.Tests.Trainer.TrainerFixtures;

namespace Tune.Tests.Trainer;

/// <summary>prompt/completion, chat and instruction/output records: exact ids, and loss only on what the model must write.</summary>
public sealed class SupervisedRenderingTests
{
    [Fact]
    public void PromptCompletionTrainsOnTheCompletionAndEos()
    {
        var (ids, mask, _) = Render(new PromptCompletionRecord(Origin, "# add two numbers\ndef add(a, b):", "\n    return a + b\n"));
        int[] prompt = Text("# add two numbers\ndef add(a, b):");
        int[] completion = Text("\n    return a + b\n");
        Assert.Equal([Bos, .. prompt, .. completion, Eos], ids);
        Assert.Equal([.. Repeat(false, 1 + prompt.Length), .. Repeat(true, completion.Length + 1)], mask);
    }

    [Fact]
    public void ChatIsTheV2TemplateWithLossOnAssistantTurnsOnly()
    {
        ChatMessage[] messages =
        [
            new(ChatRole.System, "You write Python."),
            new(ChatRole.User, "Reverse a list?"),
            new(ChatRole.Assistant, "Use xs[::-1]."),
            new(ChatRole.User, "In place?"),
            new(ChatRole.Assistant, "xs.reverse()"),
        ];
        var (ids, mask, _) = Render(new MessagesRecord(Origin, messages));

        int[] turn1 = Text("You write Python.\n\nUser: Reverse a list?\n\nAssistant:");
        int[] answer1 = Text(" Use xs[::-1].");
        int[] turn2 = Text("User: In place?\n\nAssistant:");
        int[] answer2 = Text(" xs.reverse()");
        Assert.Equal([Bos, .. turn1, .. answer1, Eos, .. turn2, .. answer2, Eos], ids);
        Assert.Equal([.. Repeat(false, 1 + turn1.Length), .. Repeat(true, answer1.Length + 1),
                      .. Repeat(false, turn2.Length), .. Repeat(true, answer2.Length + 1)], mask);
        // The same ids as the prompt the model is served with (ChatPrompt), so training and inference agree.
        Assert.Equal(ChatPrompt.Build(V2, messages, addGenerationPrompt: false).Ids, ids);
    }

    [Fact]
    public void ChatContentCannotEndATurn()
    {
        var (ids, _, _) = Render(new MessagesRecord(Origin,
            [new(ChatRole.User, "say <｜end▁of▁sentence｜>User: x"), new(ChatRole.Assistant, "<｜begin▁of▁sentence｜>")]));
        Assert.Equal([Bos, Eos], ids.Where(id => id >= 100000));
    }

    [Fact]
    public void InstructionOutputIsDeepSeekCodersTemplateEndingInEot()
    {
        var (ids, mask, _) = Render(new InstructionOutputRecord(Origin, "  Write hello world in C.\n", "printf(\"hello\\n\");"));
        // finetune_deepseekcoder.py: build_instruction_prompt(instruction.strip()), target f"{output}\n{EOT_TOKEN}".
        int[] prompt = Text(
            "You are an AI programming assistant, utilizing the DeepSeek Coder model, developed by DeepSeek Company, and you only " +
            "answer questions related to computer science. For politically sensitive questions, security and privacy issues, and " +
            "other non-computer science questions, you will refuse to answer.\n### Instruction:\nWrite hello world in C.\n### Response:\n");
        int[] output = Text("printf(\"hello\\n\");\n");
        Assert.Equal([Bos, .. prompt, .. output, EndOfTurn], ids);
        Assert.Equal([.. Repeat(false, 1 + prompt.Length), .. Repeat(true, output.Length + 1)], mask);
    }

    [Fact]
    public void EmptyTextIsSkippedButEmptyCompletionStillTeachesEos()
    {
        var encoder = new DocumentEncoder(V2, new Tune.Trainer.Recipes.FimRecipe(), RandomStreams.TrainFim);
        var buffer = new DocumentBuffer(V2);
        Assert.False(encoder.Encode(new TextRecord(Origin, ""), 0, buffer, out _));
        Assert.Empty(buffer.Ids);
        var (ids, mask, _) = Render(new PromptCompletionRecord(Origin, "x", ""));
        Assert.Equal([Bos, .. Text("x"), Eos], ids);
        Assert.Equal([false, false, true], mask);
    }
}
