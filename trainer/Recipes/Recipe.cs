namespace Tune.Trainer.Recipes;

/// <summary>
/// A training run as data, what <c>tune train RECIPE.yaml</c> reads (<see cref="RecipeLoader"/>). Every key has a
/// default; recipes/README.md explains each one. Keys are the snake_case forms of the property names.
/// </summary>
public sealed record Recipe
{
    public ModelRecipe Model { get; init; } = new();

    public LoraRecipe Lora { get; init; } = new();

    public EsftRecipe Esft { get; init; } = new();

    public DataRecipe Data { get; init; } = new();

    public OptimRecipe Optim { get; init; } = new();

    public ScheduleRecipe Schedule { get; init; } = new();

    public TrainRecipe Train { get; init; } = new();

    public OutputRecipe Output { get; init; } = new();
}
