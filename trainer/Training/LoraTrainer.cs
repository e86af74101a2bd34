using System.Diagnostics;
using System.Text.Json;
using TorchSharp;
using TorchSharp.Modules;
using Tune.Model;
using Tune.Model.Distributed;
using Tune.Trainer.Data;
using Tune.Trainer.Esft;
using Tune.Trainer.Parallel;
using Tune.Trainer.Recipes;
using static TorchSharp.torch;

namespace Tune.Trainer.Training;

/// <summary>
/// The optimisation loop over a model whose trainable parameters (LoRA adapters, chosen experts) are already in
/// place: AdamW, warm-up + cosine/constant schedule, gradient accumulation with the loss normalised by the step's
/// target-token count, clipping, the MoE balance loss with the recipe's coefficient, periodic evaluation, and
/// atomic checkpoints that a resumed run continues from exactly. With expert parallelism (more than one rank), each rank
/// trains on its rows of every step (<see cref="DataParallelRank.RowsOfMicroBatch"/>) with the loss normalised by the
/// step's target tokens on all ranks, gradients of replicated parameters are summed over ranks, clipping uses the norm
/// over all ranks, and only rank 0 writes metrics; each rank checkpoints its own adapters and optimiser state.
/// </summary>
public sealed class LoraTrainer
{
    private const string CheckpointPrefix = "step-";

    private readonly Recipe _recipe;
    private readonly DeepSeekV2ForCausalLM _model;
    private readonly LoraConfig _lora;
    private readonly PackedDataset _train;
    private readonly PackedDataset? _eval;
    private readonly TextWriter _log;
    private readonly List<Parameter> _parameters;
    private readonly double _auxCoefficient;
    private readonly ExpertConfig? _fullExperts;
    private readonly bool _savesPeftAdapter;
    private readonly DataParallelRank? _parallel;
    private readonly TimedCollectives? _communication;

    /// <param name="fullExperts">The routed experts trained in full (ESFT full mode) that this rank holds, saved and restored with each checkpoint.</param>
    /// <param name="collectives">The ranks of an expert-parallel run (the model loaded sharded over the same, timed,
    /// collectives, so that each step reports its communication); null: one process.</param>
    public LoraTrainer(Recipe recipe, DeepSeekV2ForCausalLM model, LoraConfig lora, PackedDataset train, PackedDataset? eval, TextWriter log,
        ExpertConfig? fullExperts = null, TimedCollectives? collectives = null)
    {
        (_recipe, _model, _lora, _train, _eval, _log, _fullExperts) = (recipe, model, lora, train, eval, log, fullExperts);
        // Routers trained in full (lora.train_router) travel in the PEFT adapter as modules_to_save.
        _savesPeftAdapter = LoraInjection.Projections(model).Any(p => p.Projection.HasLora) || PeftAdapter.Routers(model).Any(r => r.Router.Weight.requires_grad);
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        _parameters = trainable.Select(p => p.parameter).ToList();
        if (collectives is { Size: > 1 })
        {
            _parallel = new DataParallelRank(collectives, trainable.Select(p => (p.name, p.parameter)));
            _communication = collectives;
        }
        // A rank may hold none of the experts ESFT full mode trains: it still routes, exchanges and sums with the
        // others, with an optimiser over nothing.
        double everywhere = _parallel?.Sum(_parameters.Count) ?? _parameters.Count;
        if (everywhere == 0) throw new InvalidOperationException("nothing to train: no parameter requires grad");
        _auxCoefficient = recipe.Train.AuxLossCoef ?? model.Config.AuxLossAlpha;
    }

    public string OutputDirectory => _recipe.Output.Dir;
    public string CheckpointDirectory => Path.Combine(OutputDirectory, "checkpoints");
    public string MetricsPath => Path.Combine(OutputDirectory, "metrics.jsonl");

    private int Rank => _parallel?.Rank ?? 0;
    private int Ranks => _parallel?.Ranks ?? 1;
    private bool WritesMetrics => Rank == 0;

    /// <summary>Runs to train.max_steps (from the last checkpoint when <paramref name="resume"/>); returns this run's steps.</summary>
    public IReadOnlyList<StepMetrics> Run(bool resume, CancellationToken cancel = default)
    {
        OptimRecipe o = _recipe.Optim;
        TrainRecipe t = _recipe.Train;
        using var optimizer = optim.AdamW(_parameters, o.Lr, o.Betas[0], o.Betas[1], o.Eps, o.WeightDecay);
        var schedule = new LearningRateSchedule(_recipe.Schedule, o.Lr, t.MaxSteps);
        Directory.CreateDirectory(OutputDirectory);

        var state = new TrainerState(0, 0, _train.Fingerprint, Ranks);
        if (resume && LatestCheckpoint() is { } latest)
        {
            state = Restore(latest, optimizer);
            _log.WriteLine($"resumed from {latest} at step {state.Step}");
        }
        else if (resume)
        {
            _log.WriteLine($"no checkpoint in {CheckpointDirectory}; starting from step 0");
        }
        if (WritesMetrics) TruncateMetrics(state.Step);

        var metrics = new List<StepMetrics>();
        var clock = Stopwatch.StartNew();
        int rowsPerStep = t.BatchSize * t.GradAccum * Ranks;
        for (int step = state.Step; step < t.MaxSteps; step++)
        {
            cancel.ThrowIfCancellationRequested();
            double lr = schedule.At(step);
            foreach (var group in optimizer.ParamGroups) group.LearningRate = lr;
            // Dropout draws from the global generator: seeding it per step makes a resumed step draw what it would have,
            // and per rank keeps ranks from drawing the same masks for their different rows.
            torch.manual_seed(t.Seed * 1_000_003 + step + ((long)Rank << 40));
            _model.train();

            var stepClock = Stopwatch.StartNew();
            TimeSpan communicationBefore = _communication?.Elapsed ?? TimeSpan.Zero;
            PackedRow[] rows = Enumerable.Range(0, rowsPerStep).Select(i => _train.Row(state.NextRow + i)).ToArray();
            // Every rank reads the whole step, so each knows the step's target-token count on all ranks.
            long targets = rows.Sum(r => CountTargets(r));
            optimizer.zero_grad();
            double ce = 0, aux = 0;
            for (int micro = 0; micro < t.GradAccum; micro++)
            {
                using var scope = NewDisposeScope();
                PackedRow[] mine = _parallel is null
                    ? rows[(micro * t.BatchSize)..((micro + 1) * t.BatchSize)]
                    : DataParallelRank.RowsOfMicroBatch(Rank, Ranks, t.BatchSize, micro).Select(i => rows[i]).ToArray();
                using TrainingBatch batch = TrainingBatch.From(mine, _model.Runtime.Device);
                var auxLosses = _auxCoefficient > 0 ? new List<Tensor>() : null;
                Tensor logits = _model.Forward(batch.Ids, mask: batch.Mask, auxLosses: auxLosses, checkpointLayers: t.GradCheckpointing);
                Tensor ceSum = nn.functional.cross_entropy(logits.view(-1, logits.shape[2]), batch.Targets.view(-1),
                    ignore_index: TrainingBatch.Ignore, reduction: nn.Reduction.Sum);
                Tensor loss = ceSum / Math.Max(targets, 1);
                // With expert parallelism each layer's balance loss is this rank's share of it, so the shares add up.
                if (auxLosses is { Count: > 0 })
                {
                    Tensor auxMean = stack(auxLosses).sum() / t.GradAccum;
                    aux += auxMean.item<float>();
                    loss = loss + auxMean * _auxCoefficient;
                }
                loss.backward();
                ce += ceSum.item<float>();
            }
            // libtorch scales by min(1, max_norm / norm), which would zero every gradient at grad_clip 0 (meaning off).
            double maxNorm = o.GradClip > 0 ? o.GradClip : double.PositiveInfinity;
            double norm;
            if (_parallel is null)
            {
                norm = nn.utils.clip_grad_norm_(_parameters, maxNorm);
            }
            else
            {
                _parallel.SumReplicatedGradients();
                norm = _parallel.ClipGlobalNorm(maxNorm);
                ce = _parallel.Sum(ce);
                aux = _parallel.Sum(aux);
            }
            optimizer.step();
            state = state with { Step = step + 1, NextRow = state.NextRow + rowsPerStep };
            double stepSeconds = stepClock.Elapsed.TotalSeconds;
            // Read before gathering, so that the gathering itself counts for no step.
            double[]? communication = _communication is null ? null : _parallel!.Gather((_communication.Elapsed - communicationBefore).TotalSeconds);

            long tokens = rows.Sum(r => (long)r.Ids.Length);
            var m = new StepMetrics(step + 1, ce / Math.Max(targets, 1), aux, lr, norm, tokens, tokens / stepSeconds,
                StepSeconds: stepSeconds, CommunicationSeconds: communication);
            bool last = step + 1 == t.MaxSteps;
            if (_eval is not null && (last || t.EvalEvery > 0 && (step + 1) % t.EvalEvery == 0))
            {
                double evalLoss = Evaluate(_eval);
                m = m with { EvalLoss = evalLoss, EvalPerplexity = Math.Exp(evalLoss) };
            }
            metrics.Add(m);
            if (WritesMetrics) AppendMetrics(m);
            if (last || t.LogEvery > 0 && (step + 1) % t.LogEvery == 0 || m.EvalLoss is not null) Log(m, clock.Elapsed, state.Step - metrics.Count, t.MaxSteps);
            if (last || t.SaveEvery > 0 && (step + 1) % t.SaveEvery == 0) Save(state, optimizer);
        }
        LogTiming(metrics);
        return metrics;
    }

    /// <summary>
    /// Mean step time and, per rank, its share spent in communication, over this run's steps after the first (which
    /// pays for warming up: first-touch allocations, lazily initialised kernels).
    /// </summary>
    private void LogTiming(List<StepMetrics> metrics)
    {
        if (metrics.Count < 2) return;
        var timed = metrics.Skip(1).ToList();
        double step = timed.Average(m => m.StepSeconds!.Value);
        string steps = $"steps {timed[0].Step}-{timed[^1].Step}";
        if (_communication is null)
        {
            _log.WriteLine($"time per step ({steps}): {step:F3} s, no communication (one process)");
            return;
        }
        string ranks = string.Join(", ", Enumerable.Range(0, Ranks).Select(r =>
        {
            double c = timed.Average(m => m.CommunicationSeconds![r]);
            return $"rank {r} {c:F3} s ({100 * c / step:F1} %)";
        }));
        _log.WriteLine($"time per step ({steps}): {step:F3} s; in communication: {ranks}");
    }

    /// <summary>Mean cross-entropy per target token over one epoch of <paramref name="data"/>.</summary>
    public double Evaluate(PackedDataset data)
    {
        _model.eval();
        using var noGrad = no_grad();
        double sum = 0;
        long count = 0;
        int batchSize = _recipe.Train.BatchSize;
        for (long start = 0; start < data.RowsPerEpoch; start += batchSize)
        {
            using var scope = NewDisposeScope();
            PackedRow[] rows = Enumerable.Range(0, (int)Math.Min(batchSize, data.RowsPerEpoch - start)).Select(i => data.Row(start + i)).ToArray();
            using TrainingBatch batch = TrainingBatch.From(rows, _model.Runtime.Device);
            Tensor logits = _model.Forward(batch.Ids, mask: batch.Mask);
            sum += nn.functional.cross_entropy(logits.view(-1, logits.shape[2]), batch.Targets.view(-1),
                ignore_index: TrainingBatch.Ignore, reduction: nn.Reduction.Sum).item<float>();
            count += batch.TargetCount;
        }
        _model.train();
        return sum / Math.Max(count, 1);
    }

    private static long CountTargets(PackedRow row)
    {
        long n = 0;
        for (int i = 0; i + 1 < row.Ids.Length; i++)
            if (row.SegmentIds[i + 1] == row.SegmentIds[i] && row.LossMask[i + 1]) n++;
        return n;
    }

    /// <summary>
    /// Writes the checkpoint under a temporary name and renames it, then keeps only the last K. With expert parallelism
    /// each rank writes its adapters (its experts' and a copy of the replicated ones) and its optimiser state into
    /// rank-R/ of the same directory, which must then be on a file system all ranks share; rank 0 completes it.
    /// </summary>
    private void Save(TrainerState state, OptimizerHelper optimizer)
    {
        string final = Path.Combine(CheckpointDirectory, $"{CheckpointPrefix}{state.Step:D6}");
        string partial = final + ".partial";
        if (Rank == 0)
        {
            if (Directory.Exists(partial)) Directory.Delete(partial, recursive: true);
            Directory.CreateDirectory(partial);
        }
        _parallel?.Barrier();
        string mine = RankDirectory(partial);
        Directory.CreateDirectory(mine);
        if (_savesPeftAdapter) PeftAdapter.Save(_model, _lora, mine, _recipe.Model.Path);
        if (_fullExperts is not null) EsftExpertWeights.Save(_model, _fullExperts, mine);
        optimizer.save_state_dict(Path.Combine(mine, "optimizer.bin"));
        _parallel?.Barrier();
        if (Rank == 0)
        {
            state.Save(partial);
            if (Directory.Exists(final)) Directory.Delete(final, recursive: true);
            Directory.Move(partial, final);
            int keep = _recipe.Train.KeepLast;
            if (keep > 0)
                foreach (string old in Checkpoints().SkipLast(keep)) Directory.Delete(old, recursive: true);
        }
        // No rank may look for the newest checkpoint (or write the next) before rank 0 has renamed this one.
        _parallel?.Barrier();
    }

    /// <summary>Where this rank's part of a checkpoint is: the checkpoint itself for one process.</summary>
    private string RankDirectory(string checkpoint) => _parallel is null ? checkpoint : Path.Combine(checkpoint, $"rank-{Rank}");

    private TrainerState Restore(string directory, OptimizerHelper optimizer)
    {
        TrainerState state = TrainerState.Load(directory);
        // Rows, experts and optimiser states are split by the number of ranks, so another number cannot continue the run.
        if (state.Ranks != Ranks)
            throw new InvalidOperationException($"{directory}: this checkpoint was written by a run on {state.Ranks} rank(s), " +
                                                $"but this run has {Ranks}; resume with {state.Ranks} rank(s), or start a new run");
        if (state.DataFingerprint != _train.Fingerprint)
            throw new InvalidOperationException($"{directory}: the training data changed since this checkpoint " +
                                                "(different files, order, sequence length or FIM settings); resuming would not continue the same run");
        string mine = RankDirectory(directory);
        if (_savesPeftAdapter) PeftAdapter.Restore(_model, mine);
        if (_fullExperts is not null) EsftExpertWeights.Restore(_model, _fullExperts, mine);
        optimizer.load_state_dict(Path.Combine(mine, "optimizer.bin"));
        return state;
    }

    private IEnumerable<string> Checkpoints() =>
        Directory.Exists(CheckpointDirectory)
            ? Directory.EnumerateDirectories(CheckpointDirectory, CheckpointPrefix + "*")
                .Where(d => !d.EndsWith(".partial", StringComparison.Ordinal) && File.Exists(Path.Combine(d, TrainerState.FileName)))
                .Order(StringComparer.Ordinal)
            : [];

    private string? LatestCheckpoint() => Checkpoints().LastOrDefault();

    private void TruncateMetrics(int step)
    {
        if (!File.Exists(MetricsPath)) return;
        var kept = File.ReadLines(MetricsPath).Where(l => JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt32() <= step).ToList();
        File.WriteAllLines(MetricsPath, kept);
    }

    private static readonly JsonSerializerOptions MetricsJson = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    private void AppendMetrics(StepMetrics m) => File.AppendAllText(MetricsPath, JsonSerializer.Serialize(m, MetricsJson) + "\n");

    private void Log(StepMetrics m, TimeSpan elapsed, int firstStep, int maxSteps)
    {
        double perStep = elapsed.TotalSeconds / Math.Max(1, m.Step - firstStep);
        TimeSpan eta = TimeSpan.FromSeconds(perStep * (maxSteps - m.Step));
        string eval = m.EvalLoss is { } e ? $", eval {e:F4} (ppl {m.EvalPerplexity:F2})" : "";
        _log.WriteLine($"step {m.Step}/{maxSteps}  loss {m.Loss:F4}  lr {m.LearningRate:E2}  |g| {m.GradNorm:F3}  " +
                       $"{m.TokensPerSecond:F0} tok/s  ETA {eta:hh\\:mm\\:ss}{eval}");
    }
}
