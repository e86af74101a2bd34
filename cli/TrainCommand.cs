using System.CommandLine;
using Tune.Trainer;
using Tune.Trainer.Recipes;

namespace Tune.Cli;

internal static class TrainCommand
{
    public static Command Create()
    {
        var recipe = new Argument<string>("recipe") { Description = "A training recipe (see recipes/README.md)", HelpName = "RECIPE.yaml" };
        var set = new Option<string[]>("--set")
        {
            Description = "Override a recipe key, e.g. --set train.max_steps=200 --set lora.rank=32 (repeatable)",
            HelpName = "KEY=VALUE",
            AllowMultipleArgumentsPerToken = false,
        };
        var resume = new Option<bool>("--resume") { Description = "Continue from the newest checkpoint in the output directory" };
        var command = new Command("train", "Fine-tune with LoRA as a recipe says; writes a PEFT adapter, checkpoints and metrics.jsonl")
        {
            recipe, set, resume,
        };
        command.SetAction(async (parse, cancel) =>
        {
            Recipe loaded = RecipeLoader.Load(parse.GetValue(recipe)!, parse.GetValue(set) ?? []);
            TrainingResult result = await TrainingJob.RunAsync(loaded, parse.GetValue(resume), parse.InvocationConfiguration.Error, cancel);
            parse.InvocationConfiguration.Output.WriteLine(
                $"loss {result.LossBefore:F4} -> {result.LossAfter:F4}; adapter: {result.AdapterDirectory}");
            return 0;
        });
        return command;
    }
}
