package wire

import (
	"io"
	"sync"
)

// Pipe is an in-memory pipe whose writes do not wait for a read: they queue, up to max bytes, and
// one Read takes everything queued that fits. io.Pipe hands each write to one read, so HTTP/2's
// many small writes (window updates, pings) would each become a message of the exec stream they
// travel on, and each message costs the API server, the kubelet and the container runtime a
// wake-up. Behind a busy stream they now leave together.
type Pipe struct {
	mu     sync.Mutex
	cond   sync.Cond
	max    int
	buf    []byte
	rerr   error // set by CloseWithError/Close: reads drain buf, then return it
	werr   error // set by the read side's CloseRead: writes fail with it
	closed bool
}

// NewPipe returns a pipe that queues up to max bytes before a write waits.
func NewPipe(max int) *Pipe {
	p := &Pipe{max: max}
	p.cond.L = &p.mu
	return p
}

// Write queues b; it waits while the queue holds max bytes or more.
func (p *Pipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for len(b) > 0 {
		for len(p.buf) >= p.max && p.werr == nil && !p.closed {
			p.cond.Wait()
		}
		switch {
		case p.werr != nil:
			return n, p.werr
		case p.closed:
			return n, io.ErrClosedPipe
		}
		k := min(len(b), p.max-len(p.buf))
		p.buf = append(p.buf, b[:k]...)
		b, n = b[k:], n+k
		p.cond.Broadcast()
	}
	return n, nil
}

// Read takes what is queued, waiting for a write when nothing is.
func (p *Pipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.buf) == 0 && !p.closed && p.werr == nil {
		p.cond.Wait()
	}
	if len(p.buf) == 0 {
		if p.werr != nil {
			return 0, p.werr
		}
		if p.rerr != nil {
			return 0, p.rerr
		}
		return 0, io.EOF
	}
	n := copy(b, p.buf)
	p.buf = p.buf[:copy(p.buf, p.buf[n:])]
	p.cond.Broadcast()
	return n, nil
}

// Close ends the write side: reads return what is queued, then io.EOF.
func (p *Pipe) Close() error { return p.CloseWithError(nil) }

// CloseWithError ends the write side: reads return what is queued, then err (io.EOF when nil).
func (p *Pipe) CloseWithError(err error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed, p.rerr = true, err
	}
	p.cond.Broadcast()
	return nil
}

// CloseRead ends the read side: writes and reads fail with err (io.ErrClosedPipe when nil), and
// what is queued is dropped.
func (p *Pipe) CloseRead(err error) {
	if err == nil {
		err = io.ErrClosedPipe
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.werr == nil {
		p.werr = err
	}
	p.buf = nil
	p.cond.Broadcast()
}
