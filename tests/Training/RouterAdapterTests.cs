using TorchSharp;
using Tune.Formats;
using Tune.Model;
using Tune.Model.Tokenization;
using Tune.Tests.Model;
using Tune.Trainer;
using Tune.Trainer.Data;
using Tune.Trainer.Recipes;
using Tune.Trainer.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Tune.Tests.Training;

/// <summary>
/// lora.train_router: the routers the trainer trains in full travel with the PEFT adapter (modules_to_save), so the
/// adapter alone gives back the trained model, applied or merged.
/// </summary>
[Collection("torch")]
public sealed class RouterAdapterTests(ITestOutputHelper output)
{
    private static readonly long[] Ids = [0, 17, 250, 3, 99, 411, 2, 58, 300, 17];

    private static float[] Logits(DeepSeekV2ForCausalLM model)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        return model.Forward(tensor(Ids).unsqueeze(0)).data<float>().ToArray();
    }

    private static double MaxDiff(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max();

    [Fact]
    public async Task AnAdapterTrainedWithTrainRouterReproducesTheTrainedModelAppliedAndMerged()
    {
        string dir = Path.Combine(TestModels.Root, $"router-train-{Guid.NewGuid():N}");
        Recipe recipe = RecipeLoader.Parse(TrainingJobTests.Recipe(dir), "router.yaml",
            ["lora.train_router=true", "lora.target_modules=[o_proj, up_proj]", "train.max_steps=8", "train.save_every=0"]);
        var data = await TrainingData.LoadAsync(recipe.Data, DeepSeekTokenizer.Load(recipe.Model.Path), Environment.CurrentDirectory);
        LoraConfig lora = TrainingJob.ToLoraConfig(recipe.Lora);
        float[] trained, loraOnly;
        using (var checkpoint = CheckpointDirectory.Open(recipe.Model.Path))
        using (var model = DeepSeekV2ForCausalLM.Load(checkpoint, TorchRuntime.Cpu, name => name.EndsWith(".mlp.gate.weight", StringComparison.Ordinal)))
        {
            LoraInjection.Attach(model, lora, recipe.Train.Seed);
            new LoraTrainer(recipe, model, lora, data.Train, data.Eval, TextWriter.Null).Run(resume: false);
            trained = Logits(model);
            // The trainer's last checkpoint holds the adapter as the trainer saved it.
            string saved = Directory.GetDirectories(Path.Combine(dir, "checkpoints")).Single();
            PeftAdapter.Save(model, lora, dir, recipe.Model.Path);
            Assert.Equal(File.ReadAllBytes(Path.Combine(saved, PeftAdapter.WeightsFile)), File.ReadAllBytes(Path.Combine(dir, PeftAdapter.WeightsFile)));
        }

        using (var adapter = PeftAdapterFile.Open(dir))
        using (var checkpoint = CheckpointDirectory.Open(recipe.Model.Path))
        {
            Assert.Equal(["model.layers.1.mlp.gate", "model.layers.2.mlp.gate"], adapter.SavedModules);
            using var scope = NewDisposeScope();
            Tensor router = adapter.SavedWeight("model.layers.1.mlp.gate");
            double moved = (router - tensor(checkpoint.ReadFloat32("model.layers.1.mlp.gate.weight"), router.shape)).abs().max().item<float>();
            output.WriteLine($"largest change of a router weight in training: {moved:E2}");
            Assert.True(moved > 1e-3, "training must move the router, or this test says nothing");
        }
        string config = File.ReadAllText(Path.Combine(dir, PeftAdapter.ConfigFile));
        Assert.Contains("\"modules_to_save\": [\n    \"mlp.gate\"\n  ]", config.Replace("\r\n", "\n"));

        using (var checkpoint = CheckpointDirectory.Open(recipe.Model.Path))
        using (var applied = DeepSeekV2ForCausalLM.Load(checkpoint, TorchRuntime.Cpu))
        {
            // Without the routers (what was saved before modules_to_save) the adapter is another model.
            LoraInjection.Attach(applied, lora, recipe.Train.Seed);
            using (var adapter = PeftAdapterFile.Open(dir))
            using (no_grad())
                foreach ((string name, Projection p) in LoraInjection.Projections(applied).Where(p => p.Projection.HasLora))
                {
                    (Tensor a, Tensor b) = adapter.Matrices(name);
                    p.LoraA!.copy_(a);
                    p.LoraB!.copy_(b);
                }
            loraOnly = Logits(applied);
        }
        output.WriteLine($"trained vs its LoRA without the routers: max |Δlogit| {MaxDiff(trained, loraOnly):E2}");
        Assert.True(MaxDiff(trained, loraOnly) > 1e-3, "the trained routers must matter, or this test says nothing");

        using (var checkpoint = CheckpointDirectory.Open(recipe.Model.Path))
        using (var applied = DeepSeekV2ForCausalLM.Load(checkpoint, TorchRuntime.Cpu))
        {
            PeftAdapter.Apply(applied, dir);
            double diff = MaxDiff(trained, Logits(applied));
            output.WriteLine($"trained vs base + adapter applied: max |Δlogit| {diff:E2}");
            Assert.True(diff < 1e-5, $"max |trained - applied| = {diff}");
        }

        string merged = Path.Combine(TestModels.Root, $"router-merged-{Guid.NewGuid():N}");
        AdapterMerge.Write(recipe.Model.Path, dir, merged);
        using (var mergedCheckpoint = CheckpointDirectory.Open(merged))
        using (var mergedModel = DeepSeekV2ForCausalLM.Load(mergedCheckpoint, TorchRuntime.Cpu))
        {
            // x·(W + s·B·A) and x·W + s·B·(A·x) round differently in float32: the bound is relative to the logits' size.
            double diff = MaxDiff(trained, Logits(mergedModel)), largest = trained.Max(Math.Abs);
            output.WriteLine($"trained vs merged: max |Δlogit| {diff:E2} (largest |logit| {largest:F1})");
            Assert.True(diff < 1e-5 * Math.Max(1, largest), $"max |trained - merged| = {diff}, largest |logit| {largest}");
        }
    }

    [Fact]
    public async Task ARouterOnlyRunSavesAnAdapterOfRoutersAlone()
    {
        string dir = Path.Combine(TestModels.Root, $"router-only-{Guid.NewGuid():N}");
        Recipe recipe = RecipeLoader.Parse(TrainingJobTests.Recipe(dir), "router-only.yaml",
            ["lora.train_router=true", "lora.target_modules=[]", "train.max_steps=6", "train.save_every=0"]);
        await TrainingJob.RunAsync(recipe, resume: false, TextWriter.Null);
        using var adapter = PeftAdapterFile.Open(dir);
        Assert.Empty(adapter.Modules);
        Assert.Equal(["model.layers.1.mlp.gate", "model.layers.2.mlp.gate"], adapter.SavedModules);
    }
}
