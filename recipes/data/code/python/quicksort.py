import random


def quicksort(items):
    if len(items) <= 1:
        return list(items)
    pivot = random.choice(items)
    smaller = [x for x in items if x < pivot]
    equal = [x for x in items if x == pivot]
    larger = [x for x in items if x > pivot]
    return quicksort(smaller) + equal + quicksort(larger)


def is_sorted(items):
    return all(a <= b for a, b in zip(items, items[1:]))


if __name__ == "__main__":
    data = [random.randint(0, 100) for _ in range(20)]
    result = quicksort(data)
    assert is_sorted(result)
    print(result)
