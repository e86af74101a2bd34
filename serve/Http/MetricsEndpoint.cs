using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Tune.Serve.Engine;

namespace Tune.Serve.Http;

/// <summary>GET /metrics in Prometheus' text format (version 0.0.4), after llama.cpp's counters.</summary>
public static class MetricsEndpoint
{
    public static void Map(WebApplication app, ServeContext context) =>
        app.MapGet("/metrics", http =>
        {
            http.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            return http.Response.WriteAsync(Render(context.Engine), Encoding.UTF8, http.RequestAborted);
        });

    public static string Render(InferenceEngine engine)
    {
        EngineMetrics m = engine.Metrics;
        double decodeSeconds = m.DecodeTime.TotalSeconds, promptSeconds = m.PromptTime.TotalSeconds;
        long capacity = (long)engine.SlotCount * engine.Context;
        var text = new StringBuilder();
        void Metric(string name, string type, string help, double value)
        {
            text.Append("# HELP tune_").Append(name).Append(' ').Append(help).Append('\n');
            text.Append("# TYPE tune_").Append(name).Append(' ').Append(type).Append('\n');
            text.Append("tune_").Append(name).Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
        }
        Metric("requests_total", "counter", "Generation requests finished.", m.Requests);
        Metric("prompt_tokens_total", "counter", "Prompt tokens computed (cache hits excluded).", m.PromptTokens);
        Metric("prompt_tokens_cached_total", "counter", "Prompt tokens reused from a slot's cache.", m.CachedPromptTokens);
        Metric("prompt_seconds_total", "counter", "Time spent on prompts.", promptSeconds);
        Metric("tokens_predicted_total", "counter", "Tokens generated.", m.PredictedTokens);
        Metric("tokens_predicted_seconds_total", "counter", "Time spent generating.", decodeSeconds);
        Metric("prompt_tokens_seconds", "gauge", "Average prompt throughput in tokens/s.", promptSeconds > 0 ? m.PromptTokens / promptSeconds : 0);
        Metric("predicted_tokens_seconds", "gauge", "Average generation throughput in tokens/s.", decodeSeconds > 0 ? m.PredictedTokens / decodeSeconds : 0);
        Metric("requests_processing", "gauge", "Requests generating in a slot.", engine.Busy);
        Metric("requests_queued", "gauge", "Requests waiting for a slot.", engine.Queued);
        Metric("kv_cache_tokens", "gauge", "Tokens held in the slots' latent KV caches.", engine.CachedTokens);
        Metric("kv_cache_usage_ratio", "gauge", "Share of the latent KV cache in use.", capacity > 0 ? (double)engine.CachedTokens / capacity : 0);
        Metric("slots", "gauge", "Slots (--parallel).", engine.SlotCount);
        return text.ToString();
    }
}
