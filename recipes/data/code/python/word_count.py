import sys
from collections import Counter


def word_counts(text):
    words = [w.strip(".,;:!?\"'()").lower() for w in text.split()]
    return Counter(w for w in words if w)


def main(path):
    with open(path, encoding="utf-8") as f:
        counts = word_counts(f.read())
    for word, count in counts.most_common(10):
        print(f"{count:6d} {word}")


if __name__ == "__main__":
    main(sys.argv[1])
