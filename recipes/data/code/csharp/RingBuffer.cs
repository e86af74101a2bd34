namespace Samples;

/// <summary>A fixed-capacity FIFO that overwrites its oldest item when full.</summary>
public sealed class RingBuffer<T>(int capacity)
{
    private readonly T[] _items = new T[capacity];
    private int _start;

    public int Count { get; private set; }

    public void Add(T item)
    {
        _items[(_start + Count) % _items.Length] = item;
        if (Count == _items.Length) _start = (_start + 1) % _items.Length;
        else Count++;
    }

    public T this[int index] =>
        (uint)index < (uint)Count ? _items[(_start + index) % _items.Length] : throw new ArgumentOutOfRangeException(nameof(index));
}
