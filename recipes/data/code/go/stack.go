package collections

import "errors"

// ErrEmpty is returned when popping an empty stack.
var ErrEmpty = errors.New("stack is empty")

// Stack is a LIFO stack of ints.
type Stack struct {
	items []int
}

// Push adds v on top.
func (s *Stack) Push(v int) {
	s.items = append(s.items, v)
}

// Pop removes and returns the top item.
func (s *Stack) Pop() (int, error) {
	if len(s.items) == 0 {
		return 0, ErrEmpty
	}
	v := s.items[len(s.items)-1]
	s.items = s.items[:len(s.items)-1]
	return v, nil
}

// Len is the number of items.
func (s *Stack) Len() int { return len(s.items) }
