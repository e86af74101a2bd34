namespace Tune.Trainer.Data;

/// <summary>What the data pipeline read and made, for the run's log.</summary>
public sealed record DataSummary(
    int TrainDocuments, long TrainTokens, long TrainRowsPerEpoch,
    int EvalDocuments, long EvalTokens, long EvalRows,
    int FimPsm, int FimSpm, int SkippedEmpty, int SkippedBinary)
{
    public override string ToString() =>
        $"train: {TrainDocuments:N0} documents, {TrainTokens:N0} tokens, {TrainRowsPerEpoch:N0} rows per epoch; " +
        $"eval: {EvalDocuments:N0} documents, {EvalTokens:N0} tokens, {EvalRows:N0} rows; " +
        $"FIM: {FimPsm:N0} PSM, {FimSpm:N0} SPM; skipped: {SkippedEmpty:N0} empty, {SkippedBinary:N0} binary";
}
