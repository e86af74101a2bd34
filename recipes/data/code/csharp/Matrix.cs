namespace Samples;

public sealed record Matrix(int Rows, int Columns, double[] Values)
{
    public static Matrix Identity(int n)
    {
        var values = new double[n * n];
        for (int i = 0; i < n; i++) values[i * n + i] = 1;
        return new Matrix(n, n, values);
    }

    public double this[int row, int column] => Values[row * Columns + column];

    public Matrix Multiply(Matrix other)
    {
        if (Columns != other.Rows) throw new ArgumentException("inner dimensions differ", nameof(other));
        var result = new double[Rows * other.Columns];
        for (int i = 0; i < Rows; i++)
            for (int k = 0; k < Columns; k++)
                for (int j = 0; j < other.Columns; j++)
                    result[i * other.Columns + j] += this[i, k] * other[k, j];
        return new Matrix(Rows, other.Columns, result);
    }
}
