// Package outcap keeps what a command result shows of its output: the head and the tail of
// stdout, of stderr and of their interleaving, each within a byte limit, with a marker of how much
// was left out, the byte counts of each stream, and optionally the whole interleaved output (up to
// a bound of its own) for a file that an agent can read or search afterwards.
//
// The client library and the in-pod server both use it, so a result means the same thing on
// every transport.
package outcap

import (
	"fmt"
	"io"
	"unicode/utf8"
)

// Streams, as indexes of Capture.Add.
const (
	Stdout = 1
	Stderr = 2
)

// Marker is the text put where output was left out; %d is the number of bytes.
const Marker = "\n[... %d bytes omitted ...]\n"

// Capture collects output. It is not safe for concurrent use: callers that feed it from two
// goroutines hold a lock of their own.
type Capture struct {
	head, tail int
	views      [3]view // 0: stdout and stderr in the order added; 1: stdout; 2: stderr

	openSpill  func() (io.Writer, error)
	spillLimit int64
	spill      io.Writer
	spilled    int64
	spillCut   bool
	spillErr   error
}

// view is one stream's head and tail.
type view struct {
	head []byte
	tail []byte // the latest bytes past head; holds at most 2*tail bytes, of which the last tail count
	n    int64  // bytes added in all
}

// New returns a capture that keeps at most limit bytes of each view (limit >= 1): its first
// limit/2 bytes and its last limit-limit/2 bytes.
func New(limit int) *Capture {
	limit = max(limit, 1)
	return &Capture{head: limit / 2, tail: limit - limit/2}
}

// Spill asks for the whole interleaved output, once it is over the limit: open is called then,
// once, and gets every byte from the first on, up to limit bytes. An open or write error stops the
// spill (Result reports it); the capture goes on.
func (c *Capture) Spill(limit int64, open func() (io.Writer, error)) {
	c.openSpill, c.spillLimit = open, limit
}

// Add records p as output of stream (Stdout or Stderr).
func (c *Capture) Add(stream int, p []byte) {
	if len(p) == 0 {
		return
	}
	all := &c.views[0]
	if c.openSpill != nil && c.spill == nil && c.spillErr == nil && all.n+int64(len(p)) > int64(c.head+c.tail) {
		// Nothing has been left out of the interleaved view yet: its head and tail are everything
		// so far.
		c.spill, c.spillErr = c.openSpill()
		if c.spillErr == nil {
			c.writeSpill(all.head)
			c.writeSpill(all.tail)
		}
	}
	if c.spill != nil {
		c.writeSpill(p)
	}
	all.add(p, c.head, c.tail)
	c.views[stream].add(p, c.head, c.tail)
}

func (c *Capture) writeSpill(p []byte) {
	if c.spillErr != nil || c.spillCut {
		return
	}
	if room := c.spillLimit - c.spilled; int64(len(p)) > room {
		p, c.spillCut = p[:room], true
	}
	n, err := c.spill.Write(p)
	c.spilled += int64(n)
	if err != nil {
		c.spillErr = err
	}
}

func (v *view) add(p []byte, head, tail int) {
	v.n += int64(len(p))
	if room := head - len(v.head); room > 0 {
		k := min(room, len(p))
		v.head = append(v.head, p[:k]...)
		p = p[k:]
	}
	if len(p) >= tail {
		v.tail = append(v.tail[:0], p[len(p)-tail:]...)
		return
	}
	v.tail = append(v.tail, p...)
	if len(v.tail) > 2*tail {
		v.tail = v.tail[:copy(v.tail, v.tail[len(v.tail)-tail:])]
	}
}

// show is the view as a result shows it, and whether anything was left out.
func (v *view) show(tail int) ([]byte, bool) {
	t := v.tail
	if len(t) > tail {
		t = t[len(t)-tail:]
	}
	if v.n == int64(len(v.head)+len(t)) {
		return append(append([]byte(nil), v.head...), t...), false
	}
	h := v.head
	// Cut neither end inside a UTF-8 character: a partial one counts as left out.
	for i := 1; i <= 3 && i <= len(h); i++ {
		if utf8.RuneStart(h[len(h)-i]) {
			if !utf8.FullRune(h[len(h)-i:]) {
				h = h[:len(h)-i]
			}
			break
		}
	}
	for i := 0; i < 3 && len(t) > 0 && !utf8.RuneStart(t[0]); i++ {
		t = t[1:]
	}
	out := append([]byte(nil), h...)
	out = fmt.Appendf(out, Marker, v.n-int64(len(h)+len(t)))
	return append(out, t...), true
}

// Result is what a capture shows.
type Result struct {
	// Output, Stdout and Stderr are the views: whole, or head, marker and tail.
	Output, Stdout, Stderr []byte
	// Truncated: some output was left out of Output (then of Stdout or Stderr too, or both).
	Truncated                        bool
	StdoutTruncated, StderrTruncated bool
	// StdoutBytes and StderrBytes count every byte of each stream.
	StdoutBytes, StderrBytes int64
	// Spilled is how many bytes went to the spill (0: none was opened); SpillCut says the
	// output went on past the spill's limit; SpillErr is why the spill stopped early.
	Spilled  int64
	SpillCut bool
	SpillErr error
}

// Result returns what the capture shows now.
func (c *Capture) Result() Result {
	var r Result
	r.Output, r.Truncated = c.views[0].show(c.tail)
	r.Stdout, r.StdoutTruncated = c.views[1].show(c.tail)
	r.Stderr, r.StderrTruncated = c.views[2].show(c.tail)
	r.StdoutBytes, r.StderrBytes = c.views[1].n, c.views[2].n
	r.Spilled, r.SpillCut, r.SpillErr = c.spilled, c.spillCut, c.spillErr
	if c.spill != nil && c.spillErr == nil && !c.spillCut {
		r.SpillCut = c.spilled < c.views[0].n
	}
	return r
}
