namespace Samples;

public static class Retry
{
    /// <summary>Runs the action until it succeeds or the attempts run out, doubling the delay each time.</summary>
    public static async Task<T> WithBackoff<T>(Func<Task<T>> action, int attempts, TimeSpan firstDelay)
    {
        TimeSpan delay = firstDelay;
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await action();
            }
            catch (Exception) when (attempt < attempts)
            {
                await Task.Delay(delay);
                delay *= 2;
            }
        }
    }
}
