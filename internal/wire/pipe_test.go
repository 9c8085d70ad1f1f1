package wire

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"
)

// TestPipe: writes queue without a reader and one read takes them together; a full queue holds
// the writer back until a read makes room; the read side sees the bytes in order, then the close.
func TestPipe(t *testing.T) {
	t.Run("small writes leave together", func(t *testing.T) {
		p := NewPipe(1 << 10)
		for _, s := range []string{"ab", "cd", "ef"} {
			if n, err := p.Write([]byte(s)); n != 2 || err != nil {
				t.Fatalf("Write(%q) = %d, %v", s, n, err)
			}
		}
		buf := make([]byte, 64)
		if n, err := p.Read(buf); string(buf[:n]) != "abcdef" || err != nil {
			t.Fatalf("Read = %q, %v; want the three writes in one read", buf[:n], err)
		}
	})
	t.Run("a full queue holds the writer back, order kept", func(t *testing.T) {
		p := NewPipe(8)
		want := bytes.Repeat([]byte("0123456789"), 100)
		var wg sync.WaitGroup
		var werr error
		wg.Go(func() {
			_, werr = p.Write(want)
			_ = p.Close()
		})
		got, err := io.ReadAll(readerOnly{p})
		wg.Wait()
		if err != nil || werr != nil || !bytes.Equal(got, want) {
			t.Fatalf("read %d bytes (%v), write %v; want the %d bytes in order", len(got), err, werr, len(want))
		}
	})
	t.Run("close with an error after the queue drains", func(t *testing.T) {
		p := NewPipe(64)
		_, _ = p.Write([]byte("x"))
		boom := errors.New("boom")
		_ = p.CloseWithError(boom)
		buf := make([]byte, 8)
		if n, err := p.Read(buf); n != 1 || err != nil {
			t.Fatalf("Read = %d, %v; want the queued byte first", n, err)
		}
		if _, err := p.Read(buf); !errors.Is(err, boom) {
			t.Fatalf("Read after the queue = %v, want %v", err, boom)
		}
		if _, err := p.Write([]byte("y")); !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("Write after Close = %v", err)
		}
	})
	t.Run("CloseRead fails a waiting writer", func(t *testing.T) {
		p := NewPipe(4)
		done := make(chan error)
		go func() {
			_, err := p.Write([]byte("more than four bytes"))
			done <- err
		}()
		gone := errors.New("stream ended")
		p.CloseRead(gone)
		if err := <-done; !errors.Is(err, gone) {
			t.Fatalf("Write = %v, want %v", err, gone)
		}
		if _, err := p.Read(make([]byte, 8)); !errors.Is(err, gone) {
			t.Fatalf("Read = %v, want %v", err, gone)
		}
	})
}

type readerOnly struct{ io.Reader }
