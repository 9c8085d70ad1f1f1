package podsandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Sandbox is an isolated place to run commands and work on files: the Go form of upstream's
// SandboxProtocol (pydantic-ai-backend). *KubernetesPodSandbox implements it; SessionManager and the
// toolset package depend only on this interface.
//
// Failures are Go errors (use errors.Is and errors.As), never "Error: ..." strings: a command that
// exits non-zero is a result, not an error. The upstream error texts are produced by the toolset
// package, which formats these errors for a model.
type Sandbox interface {
	// ID is the caller's identity for the sandbox (unsanitised, as given or generated).
	ID() string
	Lifecycle
	Executor
	FileSystem
	Activity
}

// Lifecycle starts and stops the sandbox's backing resources.
type Lifecycle interface {
	// Start creates the backing pod and waits until it is usable.
	Start(ctx context.Context) error
	// Stop releases the sandbox. It is idempotent and safe to call on a sandbox that never started;
	// after the first call the sandbox is unusable. The error only reports a cleanup request that did
	// not go through (for example a forbidden delete); a resource that is already gone is not an error.
	Stop(ctx context.Context) error
	// IsAlive reports whether the sandbox can serve requests now (pod Ready and not terminating).
	IsAlive(ctx context.Context) bool
}

// Executor runs shell commands.
type Executor interface {
	// Execute runs command with /bin/sh -c in the work dir. A non-zero exit is reported in the
	// response; the error is for failures to run the command at all.
	Execute(ctx context.Context, command string, opts ...ExecOption) (*ExecuteResponse, error)
}

// FileSystem is the set of file operations. Relative paths resolve against the work dir.
type FileSystem interface {
	// Read returns lines [offset, offset+limit) of a text file, numbered like `cat -n` ("%6d\t"),
	// followed by "\n\n... (N more lines)" when lines remain. limit <= 0 means DefaultReadLimit.
	Read(ctx context.Context, path string, offset, limit int) (string, error)
	// ReadBytes returns the whole file, byte for byte. Files over the read limit are refused with
	// *FileTooLargeError, never cut.
	ReadBytes(ctx context.Context, path string) ([]byte, error)
	// Write creates or replaces a file atomically, creating parent directories.
	Write(ctx context.Context, path string, content []byte) (*WriteResult, error)
	// Edit replaces old with new in a file. Unless replaceAll, old must occur exactly once.
	Edit(ctx context.Context, path, old, new string, replaceAll bool) (*EditResult, error)
	// LsInfo lists a directory: directories first, then by name.
	LsInfo(ctx context.Context, path string) ([]FileInfo, error)
	// GlobInfo finds regular files under path whose path relative to it matches pattern ("**"
	// crosses directories). "", "." and "/" mean the work dir.
	GlobInfo(ctx context.Context, pattern, path string) ([]FileInfo, error)
	// GrepRaw searches file contents for a regular expression (POSIX extended / RE2 common subset).
	GrepRaw(ctx context.Context, pattern string, opts GrepOptions) ([]GrepMatch, error)
	// Exists reports whether path is a regular file.
	Exists(ctx context.Context, path string) (bool, error)
}

// TextBytesReader is implemented by sandboxes that can return Read's numbered text together with
// the file's bytes from one fetch. The toolset uses it to fingerprint exactly what it shows a
// model (its staleness guard) without reading the file twice; other sandboxes get two calls.
type TextBytesReader interface {
	ReadWithBytes(ctx context.Context, path string, offset, limit int) (text string, data []byte, err error)
}

// Activity is what SessionManager needs to find idle sandboxes.
type Activity interface {
	// LastActivity is when the sandbox was last used.
	LastActivity() time.Time
	// Touch marks the sandbox as used now (for example while an agent is thinking).
	Touch()
	// IdleTimeout is how long the sandbox may stay unused before a session manager releases it.
	IdleTimeout() time.Duration
}

// Defaults shared by every transport.
const (
	// DefaultOutputLimit caps the bytes of output kept in an ExecuteResponse (upstream's 100 000).
	DefaultOutputLimit = 100_000
	// DefaultExecTimeout applies when Execute is given no timeout (upstream's 1800 s).
	DefaultExecTimeout = 30 * time.Minute
	// DefaultReadLimit is the number of lines Read returns when limit <= 0 (upstream's 2000).
	DefaultReadLimit = 2000
	// DefaultMaxFileBytes is the largest file ReadBytes, Read and Edit accept, and the largest
	// content Write accepts.
	DefaultMaxFileBytes = 64 << 20
	// TimeoutExitCode is the exit code reported for a command killed by its timeout, as timeout(1).
	TimeoutExitCode = 124
)

// ExecuteResponse is the result of a command.
type ExecuteResponse struct {
	// Output is stdout and stderr interleaved in the order they arrived. Output over the output
	// limit is cut in the middle: the first half of the limit and the last half are kept, with
	// OmittedMarker (the number of bytes left out) between them.
	Output string
	// Stdout and Stderr are the two streams apart, each cut the same way.
	Stdout, Stderr string
	// ExitCode is the command's exit status: 0-255, TimeoutExitCode when TimedOut, 128+n for signal n.
	ExitCode int
	// Truncated is true when any output was left out because of the output limit (of Output,
	// and so of Stdout, Stderr or both).
	Truncated bool
	// StdoutTruncated and StderrTruncated tell which of Stdout and Stderr were cut.
	StdoutTruncated, StderrTruncated bool
	// StdoutBytes and StderrBytes count every byte the command wrote to each stream.
	StdoutBytes, StderrBytes int64
	// OutputFile is set when output was cut and the caller did not stream it (no WithStdout or
	// WithStderr): the path in the sandbox of a file with the whole output, stdout and stderr
	// interleaved, up to the output file limit (see WithOutputFileLimit), for Read, GrepRaw or a
	// command. The sandbox keeps the newest few such files under OutputDir. Empty when no file
	// was kept: nothing cut, a streaming caller, WithReattach or WithRequestID, an output limit
	// over 192 KiB in HTTP mode or through the agent, or the file could not be written.
	OutputFile string
	// TimedOut is true when the command was killed (with its whole process group) by its timeout
	// or by its no-output timeout.
	TimedOut bool
	// NoOutputTimedOut is true when the timeout that fired was WithNoOutputTimeout's.
	NoOutputTimedOut bool
}

// WriteResult reports a successful Write.
type WriteResult struct {
	Path         string
	BytesWritten int
}

// EditResult reports a successful Edit.
type EditResult struct {
	Path        string
	Occurrences int
}

// FileInfo describes one directory entry or glob match.
type FileInfo struct {
	Name  string `json:"name"`
	Path  string `json:"path"`
	IsDir bool   `json:"is_dir"`
	// Size in bytes (of the link itself for a symlink). Zero in GlobInfo results, as upstream.
	Size int64 `json:"size"`
	// ModifiedAt is the modification time, truncated to the second (zero in GlobInfo results).
	ModifiedAt time.Time `json:"modified_at,omitzero"`
}

// GrepMatch is one matching line.
type GrepMatch struct {
	Path       string `json:"path"`
	LineNumber int    `json:"line_number"`
	Line       string `json:"line"`
}

// GrepOptions narrows GrepRaw.
type GrepOptions struct {
	// Path is the file or directory to search; "" means the work dir.
	Path string
	// Glob, if set, limits the search to files whose base name matches it (grep --include).
	Glob string
	// IncludeHidden searches files and directories whose names start with "." too. The zero value
	// skips them, as upstream's ignore_hidden=True default.
	IncludeHidden bool
}

// ExecOption configures one Execute call.
type ExecOption func(*ExecConfig)

// ExecConfig is the resolved configuration of one Execute call. Transports read it; callers use
// the With* options.
type ExecConfig struct {
	Timeout     time.Duration
	OutputLimit int
	Stdin       io.Reader
	Stdout      io.Writer
	Stderr      io.Writer
	Env         map[string]string
	Dir         string
	// NoOutputTimeout > 0 kills the command when it writes nothing for that long.
	NoOutputTimeout time.Duration
	// OpenStdin keeps a background process's stdin open (StartProcess; see WithOpenStdin).
	OpenStdin bool
	// PTY, if set, runs the command on a pseudo-terminal of that size (WithPTY); Resize
	// resizes it (WithTerminalResize).
	PTY    *TerminalSize
	Resize <-chan TerminalSize
	// OutputFileLimit > 0 keeps a cut call's whole output, up to that many bytes, in a file in
	// the sandbox (see ExecuteResponse.OutputFile).
	OutputFileLimit int64
	// RequestID, when set, runs the command as the background process of that id (see
	// WithRequestID); Reattach does the same with a fresh id (WithReattach).
	RequestID string
	Reattach  bool

	durable durableExec // set by Execute for the in-pod server's durable path
	// quick: a failed call returns at once instead of waiting for the watch to explain it (the
	// re-attach loop's own calls, which retry and check the pod themselves)
	quick bool
}

// durableExec asks the in-pod server to run a command apart from its request and record it as
// background process id (HTTP mode's fast path for WithReattach).
type durableExec struct {
	id         string
	storeLimit int
	keep       bool
}

// WithTimeout bounds the command; on expiry its whole process group is killed and the response has
// TimedOut set and ExitCode 124. Zero or less means DefaultExecTimeout.
func WithTimeout(d time.Duration) ExecOption { return func(c *ExecConfig) { c.Timeout = d } }

// WithNoOutputTimeout kills the command (with its whole process group) when it writes no byte to
// stdout or stderr for d: a prompt waiting for input, a hung download, a deadlock. The response
// then has TimedOut and NoOutputTimedOut set and ExitCode 124; WithTimeout still bounds the whole
// call. Zero or less means none. (A call WithReattach or WithRequestID ignores it.)
func WithNoOutputTimeout(d time.Duration) ExecOption {
	return func(c *ExecConfig) { c.NoOutputTimeout = d }
}

// WithOutputLimit sets how many bytes of output the response keeps of each stream and of their
// interleaving (default DefaultOutputLimit): the first and the last half of it when there is more.
// Streaming writers still receive everything.
func WithOutputLimit(n int) ExecOption { return func(c *ExecConfig) { c.OutputLimit = n } }

// WithOutputFileLimit sets how many bytes of a cut call's whole output the sandbox keeps in the
// file named by ExecuteResponse.OutputFile (default DefaultOutputFileLimit). Below zero: keep no
// file.
func WithOutputFileLimit(n int64) ExecOption { return func(c *ExecConfig) { c.OutputFileLimit = n } }

// WithStdin feeds r to the command's standard input; EOF on r closes it.
func WithStdin(r io.Reader) ExecOption { return func(c *ExecConfig) { c.Stdin = r } }

// WithStdout streams every byte of stdout to w as it arrives, uncapped. w should not block.
func WithStdout(w io.Writer) ExecOption { return func(c *ExecConfig) { c.Stdout = w } }

// WithStderr streams every byte of stderr to w as it arrives, uncapped. w should not block.
func WithStderr(w io.Writer) ExecOption { return func(c *ExecConfig) { c.Stderr = w } }

// WithExecEnv adds environment variables for this command only (WithEnv sets the pod's).
func WithExecEnv(env map[string]string) ExecOption { return func(c *ExecConfig) { c.Env = env } }

// WithDir runs the command in dir (relative to the work dir) instead of the work dir.
func WithDir(dir string) ExecOption { return func(c *ExecConfig) { c.Dir = dir } }

// WithReattach makes the call survive a lost connection: the command runs apart from the
// connection and is recorded in the pod as a background process, and when the connection breaks
// mid-command the call reconnects and goes on reading where it was, so it returns the complete
// result and never runs the command twice. In HTTP mode the in-pod server runs and records the
// command itself, and the call streams as a plain Execute does: only a broken stream costs more.
// In API mode the command runs under the background-process supervisor (see
// KubernetesPodSandbox.StartProcess), which costs a few calls more than a plain Execute. The pod
// keeps at most max(output limit+1, DefaultProcessOutputLimit) bytes of each stream, so after a
// re-attach a WithStdout writer sees at most that much. No WithStdin. In API mode, and after a
// re-attach, Output holds stdout and stderr in the order the client read them, not byte for byte
// in arrival order. The record stays for 2 minutes after the command's end, for a retry whose
// answer was lost, and is then removed by a later call (it is never listed by Processes).
func WithReattach() ExecOption { return func(c *ExecConfig) { c.Reattach = true } }

// WithRequestID is WithReattach with an id of the caller's ([a-z0-9][a-z0-9-]*, at most 63
// bytes), which makes a retry safe across a crash of the caller too: an Execute with an id that
// already ran returns that run's result (its output replayed to the writers) instead of running
// the command again, and one whose command still runs waits for it. The process is kept after the
// call (for later retries); remove it with Process(ctx, id) and Remove when no retry can come.
// Reusing an id for another command is refused.
func WithRequestID(id string) ExecOption { return func(c *ExecConfig) { c.RequestID = id } }

// ResolveExecOptions applies opts over the defaults.
func ResolveExecOptions(opts ...ExecOption) ExecConfig {
	c := ExecConfig{}
	for _, o := range opts {
		o(&c)
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultExecTimeout
	}
	if c.OutputLimit <= 0 {
		c.OutputLimit = DefaultOutputLimit
	}
	switch {
	case c.OutputFileLimit == 0:
		c.OutputFileLimit = DefaultOutputFileLimit
	case c.OutputFileLimit < 0:
		c.OutputFileLimit = 0
	}
	return c
}

// Sentinel errors. Typed errors below wrap or match them so errors.Is works on both.
var (
	// ErrNotFound: the file or directory does not exist.
	ErrNotFound = errors.New("no such file or directory")
	// ErrNoSandbox: Client.Attach found no pod for the sandbox id.
	ErrNoSandbox = errors.New("no such sandbox")
	// ErrIsDirectory: a file operation was given a directory.
	ErrIsDirectory = errors.New("is a directory")
	// ErrNotDirectory: LsInfo was given something that is not a directory.
	ErrNotDirectory = errors.New("not a directory")
	// ErrNotStarted: the sandbox was used before Start succeeded.
	ErrNotStarted = errors.New("sandbox not started")
	// ErrStopped: the sandbox was used after Stop.
	ErrStopped = errors.New("sandbox stopped")
	// ErrSandboxGone: the pod went away (deleted, evicted, failed) while in use.
	ErrSandboxGone = errors.New("sandbox pod is gone")
	// ErrStartup: the pod could not start; see *StartupError for the reason.
	ErrStartup = errors.New("sandbox pod did not start")
	// ErrConflict: a pod with the sandbox's name exists and is not ours to adopt.
	ErrConflict = errors.New("sandbox pod name is taken")
	// ErrUnsupportedImage: the image lacks what the API transport needs (/bin/sh and timeout).
	ErrUnsupportedImage = errors.New("image cannot run sandbox commands")
	// ErrOutputIncomplete: the transport lost part of a command's output (never reported silently).
	ErrOutputIncomplete = errors.New("command output was cut off in transit")
	// ErrConnectionLost: the connection carrying a command broke before the command's end was
	// seen. The command was not run again; it may have finished or may still be running. Errors
	// that match it also match ErrOutputIncomplete.
	ErrConnectionLost = errors.New("connection to the sandbox lost mid-command")
	// ErrUnauthorized: the in-pod server refused the token.
	ErrUnauthorized = errors.New("sandbox server refused the token")
	// ErrInvalidArgument: a caller-supplied value is unusable (empty old string, bad option, ...).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrFileTooLarge: a file exceeds the sandbox's file size limit.
	ErrFileTooLarge = errors.New("file too large")
	// ErrStringNotFound: Edit's old string does not occur in the file.
	ErrStringNotFound = errors.New("string not found in file")
	// ErrAmbiguousEdit: Edit's old string occurs more than once and replaceAll is false.
	ErrAmbiguousEdit = errors.New("string found more than once")
)

// PathError records an error and the sandbox path that caused it. Err is one of the sentinels above
// (ErrNotFound, ErrIsDirectory, ...) or a transport error.
type PathError struct {
	Op   string
	Path string
	Err  error
}

func (e *PathError) Error() string { return e.Op + " " + e.Path + ": " + e.Err.Error() }
func (e *PathError) Unwrap() error { return e.Err }

// OffsetError is returned by Read when offset is past the end of the file.
type OffsetError struct {
	Path   string
	Offset int
	Lines  int
}

func (e *OffsetError) Error() string {
	return fmt.Sprintf("Offset %d exceeds file length (%d lines)", e.Offset, e.Lines)
}
func (e *OffsetError) Is(target error) bool { return target == ErrInvalidArgument }

// FileTooLargeError is returned when a file is over the limit; nothing is read or written.
type FileTooLargeError struct {
	Path  string
	Size  int64
	Limit int64
}

func (e *FileTooLargeError) Error() string {
	return fmt.Sprintf("%s is %d bytes, over the sandbox file limit of %d bytes", e.Path, e.Size, e.Limit)
}
func (e *FileTooLargeError) Is(target error) bool { return target == ErrFileTooLarge }

// EditError is returned by Edit when old does not occur exactly once (or at all with replaceAll).
// Its message is upstream's wording.
type EditError struct {
	Path  string
	Old   string
	Count int
}

func (e *EditError) Error() string {
	if e.Count == 0 {
		return fmt.Sprintf("String '%s' not found in file", e.Old)
	}
	return fmt.Sprintf("String '%s' found %d times. Use replace_all=True to replace all, or provide more context.", e.Old, e.Count)
}

func (e *EditError) Is(target error) bool {
	if e.Count == 0 {
		return target == ErrStringNotFound
	}
	return target == ErrAmbiguousEdit
}

// StartupError explains why a pod did not become usable. It matches ErrStartup.
type StartupError struct {
	Pod     string
	Reason  string // e.g. ErrImageNeverPull, ImagePullBackOff, Unschedulable, OOMKilled, Timeout, Succeeded
	Message string
	// Events are the pod's most recent events, oldest first, as "Reason: message".
	Events []string
	// ImageUnsupported is set when the image lacks /bin/sh; the error then also matches
	// ErrUnsupportedImage.
	ImageUnsupported bool
}

func (e *StartupError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sandbox pod %s did not start: %s", e.Pod, e.Reason)
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if len(e.Events) > 0 {
		b.WriteString(" (events: " + strings.Join(e.Events, "; ") + ")")
	}
	return b.String()
}
func (e *StartupError) Is(target error) bool {
	return target == ErrStartup || (e.ImageUnsupported && target == ErrUnsupportedImage)
}

// ConflictError is returned by Start when a pod with the sandbox's name exists but cannot be
// adopted (it is not managed by podsandbox, has another sandbox id, or is terminating).
type ConflictError struct {
	Pod    string
	Reason string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("sandbox pod %s already exists and cannot be adopted: %s", e.Pod, e.Reason)
}
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }
