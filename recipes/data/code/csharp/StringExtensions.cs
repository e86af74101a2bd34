using System.Text;

namespace Samples;

public static class StringExtensions
{
    public static string ToSnakeCase(this string name)
    {
        var result = new StringBuilder(name.Length + 4);
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            if (char.IsUpper(c))
            {
                if (i > 0) result.Append('_');
                result.Append(char.ToLowerInvariant(c));
            }
            else
            {
                result.Append(c);
            }
        }
        return result.ToString();
    }

    public static bool IsPalindrome(this string text)
    {
        int i = 0, j = text.Length - 1;
        while (i < j)
        {
            if (text[i++] != text[j--]) return false;
        }
        return true;
    }
}
