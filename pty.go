package podsandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"k8s.io/client-go/tools/remotecommand"

	"github.com/podsandbox/podsandbox/internal/wire"
)

// Terminals. A command that needs one (isatty, line editing, colours, a password prompt, a
// full-screen program) runs on a pseudo-terminal when the call asks, never by default:
//
//   - HTTP mode and the agent: the in-pod server opens it; the request's body carries the input
//     and the resizes as frames, in order.
//   - API mode: pods/exec's own TTY, resized through its resize stream; such a call takes a
//     pods/exec of its own (not an exec channel).

// TerminalSize is a terminal's size in character cells.
type TerminalSize struct {
	Rows, Cols uint16
}

// WithPTY runs the command on a pseudo-terminal of size, its stdin, stdout and stderr, as a shell
// in a terminal window does. What the terminal shows comes as stdout (Stdout and Output, with the
// terminal's "\r\n" line ends); Stderr stays empty. Input from WithStdin is typed into the
// terminal, which echoes it as a terminal does; at its end the call types ^D (twice when the last
// line has no newline), which a program reading lines takes as end of file. WithTerminalResize
// resizes it while the command runs. Not with WithReattach or WithRequestID.
func WithPTY(size TerminalSize) ExecOption {
	return func(c *ExecConfig) { c.PTY = &size }
}

// WithTerminalResize resizes the command's terminal (WithPTY) to each size received from ch
// while the command runs; the command gets SIGWINCH.
func WithTerminalResize(ch <-chan TerminalSize) ExecOption {
	return func(c *ExecConfig) { c.Resize = ch }
}

// checkPTY refuses contradictory terminal options.
func checkPTY(c ExecConfig) error {
	switch {
	case c.PTY == nil && c.Resize != nil:
		return fmt.Errorf("%w: WithTerminalResize needs WithPTY", ErrInvalidArgument)
	case c.PTY == nil:
		return nil
	case c.PTY.Rows == 0 || c.PTY.Cols == 0:
		return fmt.Errorf("%w: terminal size %dx%d: want rows and columns above 0", ErrInvalidArgument, c.PTY.Rows, c.PTY.Cols)
	case c.Reattach || c.RequestID != "":
		return fmt.Errorf("%w: WithPTY cannot be combined with WithReattach or WithRequestID", ErrInvalidArgument)
	}
	return nil
}

// eofReader types the terminal's end of file after r: ^D, twice when the input's last line has
// no newline (the first only ends that line). Then, with hold, it waits for hold to close before
// its own end: on pods/exec, the end of stdin hangs the terminal up, so stdin stays open until
// the call is over. r may be nil: no input, no ^D.
type eofReader struct {
	r    io.Reader
	hold <-chan struct{}
	last byte
	tail []byte
	done bool
}

func (e *eofReader) Read(p []byte) (int, error) {
	if !e.done && e.r != nil {
		n, err := e.r.Read(p)
		if n > 0 {
			e.last = p[n-1]
		}
		if err != io.EOF {
			return n, err
		}
		e.done = true
		e.tail = []byte{4}
		if e.last != '\n' && e.last != 0 {
			e.tail = []byte{4, 4}
		}
		if n > 0 {
			return n, nil
		}
	}
	e.done = true
	if len(e.tail) > 0 {
		n := copy(p, e.tail)
		e.tail = e.tail[n:]
		return n, nil
	}
	if e.hold != nil {
		<-e.hold
	}
	return 0, io.EOF
}

// terminalInput is the body of an HTTP-mode terminal call after its request line: the input and
// the resizes as frames (wire.FrameInput, wire.FrameResize), in the order they come, until ctx
// ends (the call is over). A goroutine reads the caller's stdin, so that a resize need not wait
// for input; it ends at the input's end or error, or at its first read after the call. Like the
// stdin copy of client-go's pods/exec, it is not waited for: a caller's reader that never returns
// would hold the call forever.
type terminalInput struct {
	ctx    context.Context
	resize <-chan TerminalSize
	chunks chan []byte // nil: no input
	buf    bytes.Buffer
}

func newTerminalInput(ctx context.Context, stdin io.Reader, resize <-chan TerminalSize) *terminalInput {
	t := &terminalInput{ctx: ctx, resize: resize}
	if stdin != nil {
		t.chunks = make(chan []byte)
		r := &eofReader{r: stdin}
		go func() {
			defer close(t.chunks)
			for {
				b := make([]byte, 32<<10)
				n, err := r.Read(b)
				if n > 0 {
					select {
					case t.chunks <- b[:n]:
					case <-ctx.Done():
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
	return t
}

func (t *terminalInput) Read(p []byte) (int, error) {
	for t.buf.Len() == 0 {
		select {
		case b, ok := <-t.chunks:
			if !ok {
				t.chunks = nil // input over; resizes go on
				continue
			}
			t.buf.Write(wire.AppendFrame(t.buf.AvailableBuffer(), wire.FrameInput, b))
		case size := <-t.resize:
			data, _ := json.Marshal(wire.TerminalSize{Rows: size.Rows, Cols: size.Cols})
			t.buf.Write(wire.AppendFrame(t.buf.AvailableBuffer(), wire.FrameResize, data))
		case <-t.ctx.Done():
			return 0, io.EOF
		}
	}
	return t.buf.Read(p)
}

// sizeQueue feeds pods/exec's resize stream from a WithTerminalResize channel, starting with the
// initial size, until ctx ends.
type sizeQueue struct {
	ctx    context.Context
	first  *TerminalSize
	resize <-chan TerminalSize
}

func (q *sizeQueue) Next() *remotecommand.TerminalSize {
	if q.first != nil {
		s := q.first
		q.first = nil
		return &remotecommand.TerminalSize{Height: s.Rows, Width: s.Cols}
	}
	select {
	case s := <-q.resize:
		return &remotecommand.TerminalSize{Height: s.Rows, Width: s.Cols}
	case <-q.ctx.Done():
		return nil
	}
}
