// Package wire is the HTTP contract between the podsandbox client (httpmode.go) and the in-pod
// server (cmd/sandbox-server). The upstream routes (/health, /exec, /read, /write, /ls, /glob) keep
// pydantic-ai-backend's JSON so its Python client works against the server; the other routes are
// what the Go client needs (raw bytes, edit, grep, exists, streaming exec, late binding).
//
// That Python client asks /read for two different things: numbered lines for the model, and the
// file's content for its read_bytes and edit. ReadRawLimit is how the server tells them apart.
//
// Every route but /health requires the header TokenHeader, compared in constant time.
// Errors are a non-2xx status with an Error body.
package wire

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"time"
)

// TokenHeader carries the exec token on every authenticated request.
const TokenHeader = "X-Sandbox-Token"

// Environment variables the server reads.
const (
	EnvToken   = "SANDBOX_EXEC_TOKEN" // the token (injected from a Secret by the client library)
	EnvPort    = "SANDBOX_PORT"       // listen port, default 8080
	EnvWorkDir = "SANDBOX_WORKDIR"    // work dir for relative paths and commands, default /workspace
	EnvListen  = "SANDBOX_LISTEN"     // listen address, default 0.0.0.0 (127.0.0.1 for port-forward only)
)

// Routes.
const (
	RouteHealth     = "/health"      // GET  -> Health, no token
	RouteExec       = "/exec"        // POST ExecRequest -> ExecResponse (upstream)
	RouteExecStream = "/exec/stream" // POST one JSON ExecRequest line, "\n", then raw stdin -> NDJSON Frames
	RouteRead       = "/read"        // POST ReadRequest -> ReadResponse (numbered lines, or raw: ReadRawLimit; upstream)
	RouteReadBytes  = "/read_bytes"  // POST PathRequest -> raw bytes (application/octet-stream)
	RouteWrite      = "/write"       // POST WriteRequest (base64) -> WriteResponse (upstream)
	RouteFiles      = "/files"       // PUT ?path=P raw body -> WriteResponse (binary, streamed, atomic)
	RouteEdit       = "/edit"        // POST EditRequest -> EditResponse
	RouteLs         = "/ls"          // POST PathRequest -> []FileInfo (upstream)
	RouteGlob       = "/glob"        // POST GlobRequest -> []FileInfo (upstream)
	RouteGrep       = "/grep"        // POST GrepRequest -> []GrepMatch
	RouteExists     = "/exists"      // POST PathRequest -> ExistsResponse
	RouteConfigure  = "/configure"   // POST ConfigureRequest -> Health (rotate token, set env; warm pools)
)

// Health is the /health body.
type Health struct {
	Ready bool `json:"ready"`
}

// ExecRequest runs Command with /bin/sh -c. Only command and timeout_seconds are upstream's.
type ExecRequest struct {
	Command        string  `json:"command"`
	TimeoutSeconds float64 `json:"timeout_seconds,omitempty"` // <= 0: 1800
	// NoOutputSeconds > 0 kills the command when it writes no byte to stdout or stderr for this
	// long (the exit reports timed_out and no_output).
	NoOutputSeconds float64           `json:"no_output_seconds,omitempty"`
	Env             map[string]string `json:"env,omitempty"`
	Dir             string            `json:"dir,omitempty"`          // "" = work dir; relative = under it
	OutputLimit     int               `json:"output_limit,omitempty"` // /exec: <= 0 is 100000; /exec/stream: > 0 sends each stream's first output_limit+1 bytes only
	Stdin           bool              `json:"stdin,omitempty"`        // /exec/stream: the rest of the body is stdin
	// RequestID (/exec/stream only) makes the call durable: the server runs the command apart
	// from the request, so it survives a lost stream, and records it under ProcessRoot/RequestID
	// in the layout of the client's background processes, keeping up to StoreLimit bytes of
	// each stream there, for the client to re-attach to. A RequestID in use is refused with
	// CodeExists. Unless Keep, the record is deleted a while after the command's end.
	RequestID  string `json:"request_id,omitempty"`
	StoreLimit int    `json:"store_limit,omitempty"`
	Keep       bool   `json:"keep,omitempty"`
	// ResultLimit > 0 (/exec/stream) asks for the capped result instead of the output: no data
	// frames are sent, and the exit frame's Result holds the head and tail of each stream and of
	// their interleaving within ResultLimit bytes, and the byte counts. (A server that predates
	// the field streams the whole output, which the client caps the same way.) With FileLimit > 0,
	// output over the limit is also kept whole (its first FileLimit bytes, stdout and stderr
	// interleaved) in a file under OutputRoot, named in the result; the server keeps the newest
	// OutputFilesKept files. The exit frame must fit MaxBinaryFrame: see MaxResultLimit.
	ResultLimit int `json:"result_limit,omitempty"`
	// PTY (/exec/stream only) runs the command on a pseudo-terminal of this size: its stdout,
	// stderr and stdin, so the output comes as stdout frames alone. The body after the request
	// line is then a stream of binary frames (as StreamBinary's): 'i' with input for the
	// terminal, 'z' with a JSON TerminalSize to resize it. It needs Stdin.
	FileLimit int64         `json:"file_limit,omitempty"`
	PTY       *TerminalSize `json:"pty,omitempty"`
}

// TerminalSize is a terminal's size in character cells.
type TerminalSize struct {
	Rows uint16 `json:"rows"`
	Cols uint16 `json:"cols"`
}

// Terminal input frame types (ExecRequest.PTY).
const (
	FrameInput  = "i"
	FrameResize = "z"
)

// MaxResultLimit is the largest ResultLimit a client asks for: three views of that many bytes,
// base64 in the exit frame's JSON, fit in MaxBinaryFrame.
const MaxResultLimit = 192 << 10

// OutputRoot is where the full output of cut commands is kept in the pod.
const OutputRoot = "/tmp/.psbx-out"

// OutputFilesKept is how many of the newest output files are kept under OutputRoot; older ones
// are removed when a new one is made.
const OutputFilesKept = 8

// OutputFileName is the name of a new output file under OutputRoot: "out-", the time in
// nanoseconds (so that names sort by age), a random part, ".log".
func OutputFileName(now time.Time) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("out-%019d-%s.log", now.UnixNano(), hex.EncodeToString(b))
}

// ExecResult is a command's output as a result shows it (the exit frame of an /exec/stream
// request with Result).
type ExecResult struct {
	Output          []byte `json:"output"`
	Stdout          []byte `json:"stdout"`
	Stderr          []byte `json:"stderr"`
	Truncated       bool   `json:"truncated,omitempty"`
	StdoutTruncated bool   `json:"stdout_truncated,omitempty"`
	StderrTruncated bool   `json:"stderr_truncated,omitempty"`
	StdoutBytes     int64  `json:"stdout_bytes"`
	StderrBytes     int64  `json:"stderr_bytes"`
	// OutputFile is the path of the file that holds the full output, when it was kept.
	OutputFile string `json:"output_file,omitempty"`
}

// ProcessRoot is where background processes and durable calls keep their records in the pod.
const ProcessRoot = "/tmp/.psbx-proc"

// ExecResponse is the /exec body. output/exit_code/truncated are upstream's.
type ExecResponse struct {
	Output    string `json:"output"`
	ExitCode  int    `json:"exit_code"`
	Truncated bool   `json:"truncated"`
	Stdout    string `json:"stdout"`
	Stderr    string `json:"stderr"`
	TimedOut  bool   `json:"timed_out"`
	NoOutput  bool   `json:"no_output,omitempty"`
}

// Frame is one NDJSON line of an /exec/stream response. Data frames carry raw bytes (base64 in
// JSON). The last frame of a complete stream has Type FrameExit; a stream without it was cut.
type Frame struct {
	Type     string `json:"t"`
	Data     []byte `json:"d,omitempty"`
	ExitCode int    `json:"exit_code,omitempty"`
	TimedOut bool   `json:"timed_out,omitempty"`
	NoOutput bool   `json:"no_output,omitempty"` // FrameExit: the timeout that fired was NoOutputSeconds
	Error    string `json:"error,omitempty"`     // FrameExit: the command could not be run at all
	// Stopped (FrameExit): the server was shutting down (SIGTERM: the pod is being deleted or
	// evicted) and killed the command; its exit code and output are not the command's own end.
	Stopped bool `json:"stopped,omitempty"`
	// Result (FrameExit) is the capped result the request asked for (ExecRequest.Result).
	Result *ExecResult `json:"result,omitempty"`
}

// Frame types.
const (
	FrameStdout = "o"
	FrameStderr = "e"
	FrameExit   = "x"
)

// StreamBinary is the media type of the binary form of an /exec/stream response, which a client
// asks for with "Accept: " + StreamBinary; without it the response is NDJSON frames. Each binary
// frame is the type byte ('o', 'e' or 'x'), a 4-byte big-endian length, then the payload: raw
// output bytes for 'o' and 'e', the JSON Frame for 'x'. It carries bulk output with no base64 and
// no JSON scanning, several times faster than NDJSON.
const StreamBinary = "application/vnd.podsandbox.frames"

// MaxBinaryFrame bounds the payload of one binary frame.
const MaxBinaryFrame = 1 << 20

// AppendFrame appends one binary frame to dst: the type byte, the payload's length (4 bytes, big
// endian), the payload. The same framing carries /exec/stream's output and a terminal's input.
func AppendFrame(dst []byte, typ string, payload []byte) []byte {
	dst = append(dst, typ[0])
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// ReadFrame reads one binary frame from r. The payload goes in buf (grown when too small) and is
// valid until the next call that reuses buf. A frame over MaxBinaryFrame is an error.
func ReadFrame(r io.Reader, buf []byte) (typ string, payload []byte, err error) {
	var head [5]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return "", nil, err
	}
	n := binary.BigEndian.Uint32(head[1:])
	if n > MaxBinaryFrame {
		return "", nil, fmt.Errorf("frame of %d bytes is over the limit", n)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", nil, err
	}
	return string(head[:1]), buf, nil
}

// ReadRequest is the /read body. limit <= 0 means 2000. Offset 0 with limit ReadRawLimit asks for
// the raw content instead of numbered lines.
type ReadRequest struct {
	Path   string `json:"path"`
	Offset int    `json:"offset"`
	Limit  int    `json:"limit"`
}

// ReadRawLimit is the limit (10**9, always with offset 0) that pydantic-ai-backend's Python client
// sends to /read when it wants a file's content rather than the model's numbered view: its
// read_bytes, and so its edit, which reads, replaces and writes the whole file back through /write.
// Numbered lines there would be written into the file. /read therefore answers exactly offset 0
// with limit ReadRawLimit with the file's content as it is, and every other request with numbered
// lines.
//
// The content travels as a JSON string that the client encodes as UTF-8, so only valid UTF-8 can
// come back byte for byte (which is everything that client itself writes). A file that is not
// valid UTF-8 is refused (400, CodeInvalid) rather than altered: the client's read_bytes then
// returns b"" and its edit reports the file as not found without writing anything. A client that
// wants the numbered view of a whole file sends any other limit, such as ReadRawLimit-1; a file
// within the server's size limit has far fewer lines than that.
const ReadRawLimit = 1_000_000_000

// ReadResponse is the /read body: the numbered text (fileops.FormatRead), or for a raw request
// (ReadRawLimit) the file's content.
type ReadResponse struct {
	Content string `json:"content"`
}

// PathRequest is the body of routes that take only a path.
type PathRequest struct {
	Path string `json:"path"`
}

// WriteRequest is the upstream /write body.
type WriteRequest struct {
	Path       string `json:"path"`
	ContentB64 string `json:"content_b64"`
}

// WriteResponse reports a write.
type WriteResponse struct {
	Path         string `json:"path"`
	BytesWritten int    `json:"bytes_written"`
}

// EditRequest is the /edit body (fileops.ApplyEdit semantics).
type EditRequest struct {
	Path       string `json:"path"`
	Old        string `json:"old_string"`
	New        string `json:"new_string"`
	ReplaceAll bool   `json:"replace_all"`
}

// EditResponse reports an edit.
type EditResponse struct {
	Path        string `json:"path"`
	Occurrences int    `json:"occurrences"`
}

// GlobRequest is the /glob body.
type GlobRequest struct {
	Pattern string `json:"pattern"`
	Path    string `json:"path"`
}

// GrepRequest is the /grep body.
type GrepRequest struct {
	Pattern       string `json:"pattern"`
	Path          string `json:"path,omitempty"`
	Glob          string `json:"glob,omitempty"`
	IncludeHidden bool   `json:"include_hidden,omitempty"`
}

// ExistsResponse is the /exists body.
type ExistsResponse struct {
	Exists bool `json:"exists"`
}

// FileInfo is one row of /ls and /glob (upstream's keys).
type FileInfo struct {
	Name       string     `json:"name"`
	Path       string     `json:"path"`
	IsDir      bool       `json:"is_dir"`
	Size       int64      `json:"size"`
	ModifiedAt *time.Time `json:"modified_at,omitempty"`
}

// GrepMatch is one row of /grep.
type GrepMatch struct {
	Path       string `json:"path"`
	LineNumber int    `json:"line_number"`
	Line       string `json:"line"`
}

// ConfigureRequest binds a warm pod to a session: it replaces the token (the request itself carries
// the current one) and sets environment variables added to every later command.
type ConfigureRequest struct {
	Token string            `json:"token,omitempty"`
	Env   map[string]string `json:"env,omitempty"`
}

// Error is the body of every non-2xx response.
type Error struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	Size  int64  `json:"size,omitempty"`  // CodeTooLarge
	Limit int64  `json:"limit,omitempty"` // CodeTooLarge
	Lines int    `json:"lines,omitempty"` // CodeOffset
	Count int    `json:"count,omitempty"` // CodeStringNotFound (0), CodeAmbiguous (n)
}

// Error codes, one per typed error of the podsandbox package.
const (
	CodeNotFound       = "not_found"        // 404
	CodeIsDirectory    = "is_directory"     // 400
	CodeNotDirectory   = "not_directory"    // 400
	CodeTooLarge       = "too_large"        // 413
	CodeOffset         = "offset"           // 400
	CodeStringNotFound = "string_not_found" // 400 (Count 0)
	CodeAmbiguous      = "ambiguous"        // 400 (Count n)
	CodeInvalid        = "invalid"          // 400
	CodeUnauthorized   = "unauthorized"     // 401
	CodeInternal       = "internal"         // 500
	CodeExists         = "exists"           // 409: a durable exec's request id is in use
)
