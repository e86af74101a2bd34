using Tune.Model.Tokenization;
using Tune.Trainer.Recipes;

namespace Tune.Trainer.Data;

/// <summary>
/// Renders a record into tokens and loss targets. Text records get fill-in-the-middle here, at document level and
/// before packing, as DeepSeek-Coder-V2-Lite was pre-trained (PSM at rate 0.5, Coder-V2 paper §3.1). Whether a
/// document is FIM'd, and where it is cut, depends only on the FIM seed and the document's ordinal, so the corpus
/// is the same however it is read.
/// </summary>
internal sealed class DocumentEncoder
{
    /// <summary>
    /// DeepSeek-Coder's fine-tune prompt, verbatim from <c>finetune/finetune_deepseekcoder.py</c>
    /// (<c>build_instruction_prompt</c>): the system preamble, then the stripped instruction.
    /// </summary>
    public const string InstructionPreamble =
        "You are an AI programming assistant, utilizing the DeepSeek Coder model, developed by DeepSeek Company, and you " +
        "only answer questions related to computer science. For politically sensitive questions, security and privacy " +
        "issues, and other non-computer science questions, you will refuse to answer.\n### Instruction:\n";

    public const string ResponseHeader = "\n### Response:\n";

    /// <summary>The script's end-of-turn marker after <c>output + "\n"</c>; DeepSeek-Coder-V2's tokenizer has it as id 100008.</summary>
    public const string EndOfTurnToken = "<|EOT|>";

    private readonly DeepSeekTokenizer _tokenizer;
    private readonly FimRecipe _fim;
    private readonly long _fimStream;
    private int? _endOfTurnId;

    public DocumentEncoder(DeepSeekTokenizer tokenizer, FimRecipe fim, long fimStream)
    {
        _tokenizer = tokenizer;
        _fim = fim;
        _fimStream = fimStream;
    }

    /// <summary>
    /// Renders <paramref name="record"/> into <paramref name="into"/> (cleared first). Returns false, leaving it empty,
    /// for a text record with no text: it would teach nothing but BOS EOS.
    /// </summary>
    public bool Encode(TrainingRecord record, long ordinal, DocumentBuffer into, out FimMode fim)
    {
        into.Clear();
        fim = FimMode.None;
        switch (record)
        {
            case TextRecord text:
                if (text.Text.Length == 0) return false;
                fim = EncodeText(text.Text, ordinal, into);
                break;
            case PromptCompletionRecord pc:
                BosIfAdded(into);
                into.Text(pc.Prompt, target: false).Text(pc.Completion, target: true).Control(_tokenizer.EosId, target: true);
                break;
            case MessagesRecord chat:
                EncodeChat(chat, into);
                break;
            case InstructionOutputRecord io:
                BosIfAdded(into);
                into.Text(InstructionPreamble + io.Instruction.Trim() + ResponseHeader, target: false)
                    .Text(io.Output + "\n", target: true)
                    .Control(EndOfTurnId(io.Origin), target: true);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(record), record.GetType().Name, "unknown record type");
        }
        into.Flush();
        return true;
    }

    private FimMode EncodeText(string text, long ordinal, DocumentBuffer into)
    {
        var random = DeterministicRandom.For(_fim.Seed, _fimStream, ordinal);
        if (_fim.Rate == 0 || random.NextDouble() >= _fim.Rate)
        {
            BosIfAdded(into);
            into.Text(text, target: true).Control(_tokenizer.EosId, target: true);
            return FimMode.None;
        }
        FimSplit split = FimSplit.Draw(text, ref random);
        FimMode mode = _fim.SpmRate > 0 && random.NextDouble() < _fim.SpmRate ? FimMode.Spm : FimMode.Psm;
        EncodeFim(text, split, mode, into);
        return mode;
    }

    /// <summary>The FIM layouts of <see cref="FimMode"/>, every token but BOS a target; internal so tests can choose the cut.</summary>
    internal void EncodeFim(string text, FimSplit split, FimMode mode, DocumentBuffer into)
    {
        FimTokenIds markers = _tokenizer.Fim
            ?? throw new InvalidOperationException($"data.fim.rate is {_fim.Rate} but {_tokenizer.Source} has no FIM tokens; set data.fim.rate: 0");
        string prefix = text[..split.MiddleStart];
        string middle = text[split.MiddleStart..split.MiddleEnd];
        string suffix = text[split.MiddleEnd..];
        BosIfAdded(into);
        if (mode == FimMode.Spm)
        {
            // Prefix and middle are encoded apart: at inference the prompt ends with the prefix's tokens and the
            // model writes the middle's, so training must not let a token straddle the cut.
            into.Control(markers.Begin, true).Control(markers.Hole, true).Text(suffix, true)
                .Control(markers.End, true).Text(prefix, true).Flush();
            into.Text(middle, true);
        }
        else
        {
            into.Control(markers.Begin, true).Text(prefix, true).Control(markers.Hole, true).Text(suffix, true)
                .Control(markers.End, true).Text(middle, true);
        }
        into.Control(_tokenizer.EosId, target: true);
    }

    /// <summary>
    /// <see cref="ChatPrompt"/>'s layout with the assistant's words as targets: the model sees "...Assistant:" and
    /// must write " {answer}" and EOS, exactly what it is asked to do at inference (ESFT renders chats the same way).
    /// </summary>
    private void EncodeChat(MessagesRecord chat, DocumentBuffer into)
    {
        into.Control(_tokenizer.BosId, target: false);
        foreach (ChatMessage message in chat.Messages)
        {
            switch (message.Role)
            {
                case ChatRole.User:
                    into.Text("User: " + message.Content + "\n\n", target: false);
                    break;
                case ChatRole.Assistant:
                    into.Text("Assistant:", target: false).Text(" " + message.Content, target: true)
                        .Control(_tokenizer.EosId, target: true);
                    break;
                case ChatRole.System:
                    into.Text(message.Content + "\n\n", target: false);
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(chat), message.Role, "unknown chat role");
            }
        }
    }

    private void BosIfAdded(DocumentBuffer into)
    {
        if (_tokenizer.AddBos) into.Control(_tokenizer.BosId, target: false);
    }

    private int EndOfTurnId(RecordOrigin origin)
    {
        if (_endOfTurnId is { } known) return known;
        int[] asAdded = _tokenizer.EncodeWithAddedTokens(EndOfTurnToken);
        if (asAdded.Length != 1 || _tokenizer.EncodeText(EndOfTurnToken).SequenceEqual(asAdded))
            throw new DataFormatException(origin, null,
                $"instruction/output records end with {EndOfTurnToken}, which {_tokenizer.Source} does not have as a token");
        _endOfTurnId = asAdded[0];
        return asAdded[0];
    }
}
