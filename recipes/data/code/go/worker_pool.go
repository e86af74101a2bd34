package pool

import "sync"

// Map applies fn to every input with n workers and keeps the input order.
func Map[T, R any](inputs []T, n int, fn func(T) R) []R {
	results := make([]R, len(inputs))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				results[i] = fn(inputs[i])
			}
		}()
	}
	for i := range inputs {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return results
}
