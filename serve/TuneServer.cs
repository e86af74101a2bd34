using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TorchSharp;
using Tune.Model;
using Tune.Serve.Engine;
using Tune.Serve.Http;

namespace Tune.Serve;

/// <summary>
/// `tune serve`: the model, the engine and Kestrel with every dialect's endpoints. <see cref="StartAsync"/> returns
/// once the server listens; <see cref="Address"/> is where (the bound port when port 0 was asked for).
/// </summary>
public sealed class TuneServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly InferenceEngine _engine;
    private readonly ServedModel _model;

    public Uri Address { get; }
    public ServeContext Context { get; }

    private TuneServer(WebApplication app, InferenceEngine engine, ServedModel model, Uri address, ServeContext context) =>
        (_app, _engine, _model, Address, Context) = (app, engine, model, address, context);

    public static async Task<TuneServer> StartAsync(ServeOptions options, CancellationToken cancel = default)
    {
        options.Validate();
        if (!IPAddress.TryParse(options.Host, out IPAddress? ip) && options.Host != "localhost")
            throw new ArgumentException($"--host {options.Host}: expected an IP address (127.0.0.1, 0.0.0.0, ::) or localhost");
        if (options.Threads is { } threads) torch.set_num_threads(threads);
        TorchRuntime runtime = TorchRuntime.Parse(options.Device, options.DType);
        ServedModel model = ServedModel.Load(options, runtime);
        InferenceEngine? engine = null;
        try
        {
            int context = options.Context ?? Math.Min(model.Model.Config.MaxPositionEmbeddings, ServeOptions.DefaultContextCap);
            engine = new InferenceEngine(model, options.Parallel, context, options.MaxQueued);
            var serveContext = new ServeContext(model, engine);

            WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(k =>
            {
                if (ip is null) k.ListenLocalhost(options.Port);
                else k.Listen(ip, options.Port);
            });
            WebApplication app = builder.Build();
            if (options.ApiKey is { } key) app.Use(RequireApiKey(key));
            LlamaCppEndpoints.Map(app, serveContext);
            OpenAiEndpoints.Map(app, serveContext);
            OllamaEndpoints.Map(app, serveContext);
            MetricsEndpoint.Map(app, serveContext);
            app.MapFallback(http => ResponseWriter.JsonAsync(http,
                ResponseWriter.Error(new ApiException(404, $"no endpoint {http.Request.Method} {http.Request.Path}", code: "not_found"), ErrorShape.OpenAi), 404));
            await app.StartAsync(cancel);

            string bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            return new TuneServer(app, engine, model, new Uri(bound.Replace("[::]", "localhost", StringComparison.Ordinal)), serveContext);
        }
        catch
        {
            engine?.Dispose();
            model.Dispose();
            throw;
        }
    }

    /// <summary>Bearer-token check for every endpoint but the health probe (which llama.cpp also leaves open).</summary>
    private static Func<HttpContext, RequestDelegate, Task> RequireApiKey(string key)
    {
        byte[] expected = Encoding.UTF8.GetBytes("Bearer " + key);
        return async (http, next) =>
        {
            string path = http.Request.Path.Value ?? "";
            byte[] given = Encoding.UTF8.GetBytes(http.Request.Headers.Authorization.ToString());
            if (path is "/health" or "/v1/health" || CryptographicOperations.FixedTimeEquals(given, expected))
            {
                await next(http);
                return;
            }
            var error = new ApiException(401, "Incorrect or missing API key: send the header `Authorization: Bearer KEY`",
                code: "invalid_api_key");
            await ResponseWriter.JsonAsync(http, ResponseWriter.Error(error, path.StartsWith("/api/", StringComparison.Ordinal)
                ? ErrorShape.Ollama : ErrorShape.OpenAi), 401);
        };
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _engine.Dispose();
        _model.Dispose();
    }
}
