using TorchSharp;

namespace Tune.Model;

/// <summary>
/// Base of the graph's modules. Each registers its parts explicitly under the Hugging Face names; TorchSharp's
/// default RegisterComponents would also register every field under its C# name, so named_modules() would list each
/// projection twice.
/// </summary>
public abstract class ExplicitModule(string name) : torch.nn.Module(name)
{
    protected sealed override void RegisterComponents() { }
}
