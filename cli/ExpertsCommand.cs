using System.CommandLine;
using Tune.Model;
using Tune.Trainer.Data;
using Tune.Trainer.Esft;
using Tune.Trainer.Recipes;

namespace Tune.Cli;

/// <summary>`tune experts score|select`: ESFT's expert scoring on a task's data, and the top_p selection from the scores.</summary>
internal static class ExpertsCommand
{
    public static Command Create() => new("experts", "Expert-specialised fine-tuning (ESFT): score the routed experts on task data, select the ones to train")
    {
        Score(),
        Select(),
    };

    private static Command Score()
    {
        var model = ModelOptions.Model();
        var data = new Option<string>("--data")
        {
            Description = "The task's data: a recipe (its data section is used), or a data file or directory (JSONL, Parquet, source tree) read as --kind",
            Required = true,
            HelpName = "RECIPE.yaml|FILE|DIR",
        };
        var kind = new Option<string>("--kind") { Description = "Record kind of a data file given to --data (not a recipe)", DefaultValueFactory = _ => "text" }
            .AcceptOnlyFromAmong("text", "prompt_completion", "messages", "instruction_output");
        var output = new Option<string>("--out") { Description = "Scores file (default: the recipe's esft.scores, else expert-scores.json in its output.dir, or in the current directory for a data file)", HelpName = "FILE" };
        var maxRows = new Option<long?>("--max-rows") { Description = "Score only the first N training rows (ESFT's README samples 131,072 tokens)", HelpName = "N" };
        var png = new Option<string>("--png") { Description = "Also draw the token scores as a heat map, layers × experts", HelpName = "FILE.png" };
        var device = ModelOptions.Device();
        var dtype = ModelOptions.DType("auto");
        var command = new Command("score", "Run the base model over the data and score every (layer, expert) by gate-weight mass and token share, normalised per layer")
        {
            model, data, kind, output, maxRows, png, device, dtype,
        };
        command.SetAction(async (parse, cancel) =>
        {
            string modelDirectory = parse.GetValue(model)!;
            string source = parse.GetValue(data)!;
            bool isRecipe = source.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || source.EndsWith(".yml", StringComparison.OrdinalIgnoreCase);
            Recipe recipe = isRecipe
                ? RecipeLoader.Load(source, [$"model.path={modelDirectory}"])
                : new Recipe
                {
                    // The task's records as they are: no FIM rewriting and no eval split, which would change what is scored.
                    Data = new DataRecipe
                    {
                        Train = [new DataSourceRecipe { Path = source, Kind = ParseKind(parse.GetValue(kind)!) }],
                        EvalFraction = 0,
                        Fim = new FimRecipe { Rate = 0 },
                    },
                };
            string path = parse.GetValue(output)
                          ?? (!isRecipe ? "expert-scores.json"
                              : recipe.Esft.Scores.Length > 0 ? recipe.Esft.Scores : Path.Combine(recipe.Output.Dir, "expert-scores.json"));
            TorchRuntime runtime = TorchRuntime.Parse(parse.GetValue(device)!, parse.GetValue(dtype)!);
            var progress = new ProgressLine(parse.InvocationConfiguration.Error, "rows");
            ExpertScores scores = await ExpertScorer.ScoreAsync(modelDirectory, recipe.Data, runtime, parse.GetValue(maxRows),
                (done, total) => progress.Report((int)done, (int)total), cancel);
            progress.Done();
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            scores.Save(path);
            parse.InvocationConfiguration.Output.WriteLine($"scored {scores.Layers.Count} layers × {scores.ExpertCount} experts on {scores.Tokens:N0} tokens ({scores.Rows} rows): {path}");
            if (parse.GetValue(png) is { } image)
            {
                RoutingHeatmap.Write(image, scores, EsftScoreFunction.Token);
                parse.InvocationConfiguration.Output.WriteLine($"heat map: {image}");
            }
            return 0;
        });
        return command;
    }

    private static Command Select()
    {
        var scores = new Option<string>("--scores") { Description = "The file `tune experts score` wrote", Required = true, HelpName = "FILE" };
        var topP = new Option<double>("--top-p") { Description = "Per layer, keep experts until their cumulative score reaches this share, in (0, 1]", Required = true, HelpName = "P" };
        var score = new Option<string>("--score") { Description = "Which score to rank by", DefaultValueFactory = _ => "token" }.AcceptOnlyFromAmong("token", "gate");
        var output = new Option<string>("--out") { Description = "ESFT expert config: {\"experts\": {\"<layer>\": [ids]}, ...}", Required = true, HelpName = "expert_cfg.json" };
        var command = new Command("select", "Choose per layer the experts that cover top_p of the score, and write ESFT's expert_cfg.json")
        {
            scores, topP, score, output,
        };
        command.SetAction(parse =>
        {
            double p = parse.GetValue(topP);
            if (!(p is > 0 and <= 1)) throw new ArgumentException($"--top-p {p}: must be in (0, 1]");
            EsftScoreFunction function = parse.GetValue(score) == "gate" ? EsftScoreFunction.Gate : EsftScoreFunction.Token;
            ExpertConfig selected = ExpertConfig.Select(ExpertScores.Load(parse.GetValue(scores)!), function, p);
            selected.Save(parse.GetValue(output)!);
            parse.InvocationConfiguration.Output.WriteLine($"{selected.Count} experts in {selected.Experts.Count} layers " +
                $"({string.Join(", ", selected.Experts.Select(kv => $"{kv.Key}: {kv.Value.Length}"))}): {parse.GetValue(output)}");
            return 0;
        });
        return command;
    }

    private static RecordKind ParseKind(string kind) => kind switch
    {
        "prompt_completion" => RecordKind.PromptCompletion,
        "messages" => RecordKind.Messages,
        "instruction_output" => RecordKind.InstructionOutput,
        _ => RecordKind.Text,
    };
}
