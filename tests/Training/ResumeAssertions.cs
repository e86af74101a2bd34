using Tune.Formats;

namespace Tune.Tests.Training;

/// <summary>
/// "A resumed run is the same run", up to the last bits: libtorch's CPU kernels may pick a different vectorised path
/// (or thread split) between runs, so two identical runs can differ by an ulp. At a high learning rate AdamW amplifies
/// that: a 1e-6 change of lr moved the tiny model's loss by 3e-3 after 10 steps at lr 0.03 (that failed CI once),
/// by 1e-6 at lr 0.003. Resume tests therefore train at <see cref="GentleSteps"/>, where anything a resume gets wrong
/// (optimiser state, schedule, data position, RNG) still moves losses far past <see cref="Relative"/>.
/// </summary>
internal static class ResumeAssertions
{
    private const double Relative = 1e-5;

    /// <summary>Recipe overrides for a learning rate at which training is not chaotic.</summary>
    public static readonly string[] GentleSteps = ["optim.lr=0.003"];

    public static void SameLosses(IEnumerable<double> expected, IEnumerable<double> actual)
    {
        double[] e = expected.ToArray(), a = actual.ToArray();
        Assert.Equal(e.Length, a.Length);
        for (int i = 0; i < e.Length; i++)
            Assert.True(Math.Abs(e[i] - a[i]) <= Relative * Math.Abs(e[i]), $"step {i}: loss {a[i]} differs from {e[i]}");
    }

    public static void SameTensors(string expectedPath, string actualPath)
    {
        (double difference, string tensor) = MaxRelativeDifference(expectedPath, actualPath);
        Assert.True(difference <= Relative, $"{tensor}: differs by {difference} of its largest value");
    }

    /// <summary>
    /// The largest |expected − actual| over each tensor's largest |expected|, and the tensor where it is; the two
    /// files must hold the same tensors in the same order.
    /// </summary>
    public static (double Difference, string Tensor) MaxRelativeDifference(string expectedPath, string actualPath)
    {
        using var expected = SafetensorsFile.Open(expectedPath);
        using var actual = SafetensorsFile.Open(actualPath);
        Assert.Equal(expected.Tensors.Select(t => (t.Name, t.ElementCount)), actual.Tensors.Select(t => (t.Name, t.ElementCount)));
        (double Difference, string Tensor) worst = (0, "");
        foreach (TensorInfo t in expected.Tensors)
        {
            var e = new float[t.ElementCount];
            var a = new float[t.ElementCount];
            expected.ReadFloat32(t, e);
            actual.ReadFloat32(actual[t.Name], a);
            double scale = e.Max(v => Math.Abs(v)) + 1e-12;
            double difference = e.Zip(a, (x, y) => Math.Abs(x - y)).Max() / scale;
            if (difference > worst.Difference) worst = (difference, t.Name);
        }
        return worst;
    }
}
