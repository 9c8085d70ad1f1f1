package podsandbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/podsandbox/podsandbox/internal/outcap"
	"github.com/podsandbox/podsandbox/internal/wire"
)

// Agent-grade output. A result keeps the head and the tail of each stream, and of their
// interleaving, within the output limit, with a marker of how much it left out between them, and
// counts every byte. When a call's output is cut and the caller does not stream it, the whole
// output (stdout and stderr interleaved, up to the output file limit) is kept in a file in the
// pod and the result names it, so an agent can read or grep the part it needs:
//
//   - HTTP mode and the agent: the in-pod server keeps the file as the output arrives, and sends
//     only the result;
//   - API mode's shell paths: the client keeps the output it receives and writes the file with
//     one more call, made only for a cut result.
//
// The pod keeps the newest few such files (wire.OutputFilesKept) under OutputDir.

// OutputDir is the directory in the pod that holds the full output of cut calls.
const OutputDir = wire.OutputRoot

// DefaultOutputFileLimit is how many bytes of a cut call's full output are kept in its output
// file unless WithOutputFileLimit says otherwise.
const DefaultOutputFileLimit = 8 << 20

// OmittedMarker is what a cut Output, Stdout or Stderr holds between its head and its tail; %d is
// the number of bytes left out.
const OmittedMarker = outcap.Marker

// capture keeps a command's output for the response and passes every byte on to the caller's
// streaming writers.
type capture struct {
	mu   sync.Mutex
	out  *outcap.Capture
	file *bytes.Buffer // the full output kept for an output file (see keepFile), once cut

	writers [3]io.Writer
	fwd     sync.Mutex // held while bytes go to a caller's writer; close takes it
	closed  bool       // under fwd: the call has returned, nothing more goes to the caller's writers
}

func newCapture(limit int, stdout, stderr io.Writer) *capture {
	return &capture{out: outcap.New(limit), writers: [3]io.Writer{nil, stdout, stderr}}
}

// keepFile keeps the whole output in memory, up to limit bytes, once it is over the output
// limit, for fileData. Only for calls whose caller does not stream.
func (c *capture) keepFile(limit int64) {
	c.out.Spill(limit, func() (io.Writer, error) {
		c.file = new(bytes.Buffer)
		return c.file, nil
	})
}

// fileData is the output kept for an output file, nil when none was (nothing was cut).
func (c *capture) fileData() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.file == nil {
		return nil
	}
	return c.file.Bytes()
}

// close stops passing output on. A call closes its capture before it returns: a stream's
// goroutines may outlive a cancelled stream (client-go's do), and their late writes must not reach
// the caller's writers once Execute has returned.
func (c *capture) close() {
	c.fwd.Lock()
	c.closed = true
	c.fwd.Unlock()
}

type captureStream struct {
	c  *capture
	id int
}

func (c *capture) stream(id int) io.Writer { return captureStream{c, id} }

func (s captureStream) Write(p []byte) (int, error) {
	c := s.c
	c.mu.Lock()
	c.out.Add(s.id, p)
	w := c.writers[s.id]
	c.mu.Unlock()
	if w == nil {
		return len(p), nil
	}
	c.fwd.Lock()
	defer c.fwd.Unlock()
	if c.closed {
		return len(p), nil
	}
	return w.Write(p)
}

func (c *capture) response(code int, timedOut bool) *ExecuteResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.out.Result()
	return &ExecuteResponse{
		Output: string(r.Output), Stdout: string(r.Stdout), Stderr: string(r.Stderr),
		ExitCode: code, TimedOut: timedOut,
		Truncated: r.Truncated, StdoutTruncated: r.StdoutTruncated, StderrTruncated: r.StderrTruncated,
		StdoutBytes: r.StdoutBytes, StderrBytes: r.StderrBytes,
	}
}

// resultResponse is the response from the in-pod server's capped result.
func resultResponse(r *wire.ExecResult, code int, timedOut bool) *ExecuteResponse {
	return &ExecuteResponse{
		Output: string(r.Output), Stdout: string(r.Stdout), Stderr: string(r.Stderr),
		ExitCode: code, TimedOut: timedOut,
		Truncated: r.Truncated, StdoutTruncated: r.StdoutTruncated, StderrTruncated: r.StderrTruncated,
		StdoutBytes: r.StdoutBytes, StderrBytes: r.StderrBytes,
		OutputFile: r.OutputFile,
	}
}

// outputFileScript writes stdin to OutputDir/$1 (the directory private to the sandbox user), after
// removing the oldest files past $2-1. The name is made by the client (wire.OutputFileName), so it
// needs no quoting in the list.
const outputFileScript = `d=` + wire.OutputRoot + ` f=$1 keep=$2
umask 077
mkdir -p "$d" || exit 98
set -- $(ls "$d" 2>/dev/null)
n=$(($# - keep + 1))
while [ "$n" -gt 0 ] && [ $# -gt 0 ]; do rm -f "$d/$1"; shift; n=$((n-1)); done
cat > "$d/$f" || { rm -f "$d/$f"; exit 98; }
exit 0`

// writeOutputFile stores data as a new output file and returns its path.
func (t *apiTransport) writeOutputFile(ctx context.Context, data []byte) (string, error) {
	name := wire.OutputFileName(time.Now())
	_, errb, code, err := t.script(ctx, outputFileScript, bytes.NewReader(data), fileTimeout, name, strconv.Itoa(wire.OutputFilesKept))
	if err != nil {
		return "", err
	}
	if code != 0 {
		return "", fmt.Errorf("exit code %d: %s", code, bytes.TrimSpace(errb))
	}
	return wire.OutputRoot + "/" + name, nil
}
