package podsandbox

import (
	"context"
	"sync"
)

// background runs the goroutines of one owner (a sandbox, a warm pool, a session manager) so that
// the owner can cancel and wait for all of them: start opens it, do runs a function in a
// goroutine while it is open, stop cancels their context and waits. It can be opened again after
// stop (a sandbox started again after Stop); start and stop must not race each other.
type background struct {
	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// start opens b; the goroutines' context ends at stop.
func (b *background) start() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cancel == nil {
		b.ctx, b.cancel = context.WithCancel(context.Background()) // ended by stop
	}
}

// do runs f in a goroutine and reports true, or reports false when b is not open.
func (b *background) do(f func(ctx context.Context)) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cancel == nil {
		return false
	}
	ctx := b.ctx
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f(ctx)
	}()
	return true
}

// stop cancels the goroutines' context and waits for them.
func (b *background) stop() {
	b.mu.Lock()
	cancel := b.cancel
	b.cancel = nil
	b.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	b.wg.Wait()
}
