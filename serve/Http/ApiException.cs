namespace Tune.Serve.Http;

/// <summary>A request the server refuses, with the status and OpenAI error fields to answer it with.</summary>
public sealed class ApiException(int status, string message, string? param = null, string? code = null,
    string type = "invalid_request_error") : Exception(message)
{
    public int Status { get; } = status;
    public string? Param { get; } = param;
    public string? Code { get; } = code;
    public string Type { get; } = type;

    public static ApiException BadParameter(string param, string message) => new(400, message, param, "invalid_value");
}
