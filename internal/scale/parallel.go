package scale

import (
	"context"
	"runtime"
	"sync"
)

// heap returns the live heap after a full collection.
// Heap returns the live heap after two garbage collections: the figure per-session memory is
// measured with.
func Heap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// parallel calls f(i) for i in [0, n) with at most c calls at once and waits for all of them; it
// starts no new call once ctx is done.
func parallel(ctx context.Context, n, c int, f func(i int)) {
	sem := make(chan struct{}, c)
	var wg sync.WaitGroup
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(i)
		}()
	}
	wg.Wait()
}

// split shares total out over n parts that differ by at most one.
func split(total, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = total / n
		if i < total%n {
			out[i]++
		}
	}
	return out
}
