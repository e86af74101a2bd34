def fibonacci(n):
    """Return the n-th Fibonacci number, iteratively."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def fibonacci_sequence(count):
    return [fibonacci(i) for i in range(count)]


if __name__ == "__main__":
    print(fibonacci_sequence(10))
