// Package workers runs a job per index on a bounded number of goroutines:
// the store's inspects and the sampler's reads, each of which waits on the
// daemon or the kernel.
package workers

import (
	"context"
	"sync"
)

// Each calls fn(i) for i from 0 to n-1 on at most limit goroutines, and
// returns once every call it made has returned. Once ctx is done it hands
// out no more indices, so some may not be called.
func Each(ctx context.Context, n, limit int, fn func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(limit, n) {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
}
