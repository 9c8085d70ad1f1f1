package podsandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/klog/v2"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/podsandbox/podsandbox/internal/ere"
	"github.com/podsandbox/podsandbox/internal/fileops"
)

// apiTransport runs everything through pods/exec: WebSocket v5 first, SPDY when the upgrade is
// refused (kubectl's predicate, from k8s.io/streaming: the deprecated apimachinery copy never
// matches and would silently disable the fallback).
//
// The three protocol traps of pods/exec are handled here:
//   - silent stdout truncation: every run ends with a random end marker on stdout and stderr; a run
//     whose marker is missing is reported as ErrOutputIncomplete, never as a short result;
//   - the hang when a background child keeps stdout open: once both markers have arrived the
//     command is done, and the stream is closed after a short grace (os/exec's WaitDelay);
//   - cancel does not kill the remote process: on timeout or cancel a second exec kills the whole
//     process tree and group of the run, found by its marker in /proc/*/cmdline.
type apiTransport struct {
	s      *KubernetesPodSandbox
	rest   *rest.Config
	client rest.Interface
	pool   *channelPool // nil: every call takes a pods/exec of its own
	noWS   atomic.Bool  // the server refused WebSocket once: go straight to SPDY
	logger logr.Logger  // client-go's stream diagnostics, at debug level
}

// debugLevel lowers every record to debug: client-go reports the streams we close on purpose
// (a background child holding stdout) as errors, which are expected here.
type debugLevel struct{ slog.Handler }

func (h debugLevel) Enabled(ctx context.Context, _ slog.Level) bool {
	return h.Handler.Enabled(ctx, slog.LevelDebug)
}

// Handle drops the record unless debug is on: logr calls Handle for errors without asking
// Enabled, and client-go logs them from stream goroutines that can outlive the Execute that
// started them, so a disabled record must not reach the caller's writer at all.
func (h debugLevel) Handle(ctx context.Context, r slog.Record) error {
	if !h.Handler.Enabled(ctx, slog.LevelDebug) {
		return nil
	}
	r.Level = slog.LevelDebug
	return h.Handler.Handle(ctx, r)
}

func (h debugLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return debugLevel{h.Handler.WithAttrs(as)}
}
func (h debugLevel) WithGroup(g string) slog.Handler { return debugLevel{h.Handler.WithGroup(g)} }

// waitDelay is how long a finished command's streams may stay open (a background child holding
// them) before the client closes them.
const waitDelay = 500 * time.Millisecond

func newAPITransport(s *KubernetesPodSandbox) *apiTransport {
	t := &apiTransport{s: s, rest: s.rest, logger: logr.FromSlogHandler(debugLevel{s.log.Handler()})}
	// A fake clientset has no REST client (a nil *rest.RESTClient in a non-nil interface).
	if rc, ok := s.client.CoreV1().RESTClient().(*rest.RESTClient); ok && rc != nil {
		t.client = rc
	}
	if t.client != nil && s.cfg.execChannels > 0 {
		t.pool = newChannelPool(t, s.cfg.execChannels)
	}
	return t
}

func (t *apiTransport) close() {
	if t.pool != nil {
		t.pool.close()
	}
}

// stream runs argv in the sandbox container over pods/exec and returns its exit code.
func (t *apiTransport) stream(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	return t.streamTTY(ctx, argv, stdin, stdout, stderr, nil)
}

// streamTTY is stream, on a terminal when sizes is not nil (stderr is nil then: a terminal has
// one output).
func (t *apiTransport) streamTTY(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer, sizes remotecommand.TerminalSizeQueue) (int, error) {
	if t.client == nil {
		return 0, fmt.Errorf("podsandbox: no REST client for pods/exec")
	}
	req := t.client.Post().Namespace(t.s.cfg.namespace).Resource("pods").Name(t.s.podName).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: ContainerName,
			Command:   argv,
			Stdin:     stdin != nil,
			Stdout:    true,
			Stderr:    sizes == nil,
			TTY:       sizes != nil,
		}, scheme.ParameterCodec)
	u := req.URL()
	spdy, err := remotecommand.NewSPDYExecutor(t.rest, "POST", u)
	if err != nil {
		return 0, fmt.Errorf("podsandbox: pods/exec: %w", err)
	}
	var ex remotecommand.Executor = spdy
	if !t.noWS.Load() {
		ws, err := remotecommand.NewWebSocketExecutor(t.rest, "GET", u.String())
		if err != nil {
			return 0, fmt.Errorf("podsandbox: pods/exec: %w", err)
		}
		ex, err = remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
			fb := httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
			if fb {
				t.noWS.Store(true)
			}
			return fb
		})
		if err != nil {
			return 0, fmt.Errorf("podsandbox: pods/exec: %w", err)
		}
	}
	opts := remotecommand.StreamOptions{Stdin: stdin, Stdout: stdout, Stderr: stderr}
	if sizes != nil {
		opts.Stderr, opts.Tty, opts.TerminalSizeQueue = nil, true, sizes
	}
	err = ex.StreamWithContext(klog.NewContext(ctx, t.logger), opts)
	var ce utilexec.CodeExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ce):
		return ce.Code, nil
	case ctx.Err() != nil:
		return 0, ctx.Err()
	}
	return 0, execError(t.s.podName, err)
}

// execError types a pods/exec failure: a pod that is not there is ErrSandboxGone. A refusal by
// RBAC is not, even when its message says a role was "not found" (a restarted API server denies
// for a moment while its authorizer loads the roles).
func execError(pod string, err error) error {
	switch {
	case apierrors.IsForbidden(err) || strings.Contains(err.Error(), " is forbidden: "):
	case apierrors.IsNotFound(err) || strings.Contains(err.Error(), "not found"):
		return fmt.Errorf("%w: %s: %w", ErrSandboxGone, pod, err)
	}
	return fmt.Errorf("podsandbox: pods/exec: %w", err)
}

// runWrapper is the argv[2] script of every run: $1 dir, $2 end marker, $3 backstop timeout
// (seconds), $4 number of env assignments, $5 the script to run, then the env assignments, then the
// script's own arguments. User data only ever travels as these arguments or stdin, never pasted
// into script text. The script's output is followed by the marker on stdout and marker+status (3
// digits) on stderr; "NTO" instead of the status means the image has no timeout(1).
const runWrapper = `d=$1 mk=$2 to=$3 ne=$4 c=$5; shift 5
while [ "$ne" -gt 0 ]; do export "$1"; shift; ne=$((ne-1)); done
if ! command -v timeout >/dev/null 2>&1; then printf '%s%s' "$mk" NTO >&2; exit 127; fi
cd "$d" || { printf '%s' "$mk"; printf '%s%03d' "$mk" 1 >&2; exit 1; }
timeout -s KILL "$to" /bin/sh -c "$c" sh "$@"
s=$?
printf '%s' "$mk"
printf '%s%03d' "$mk" "$s" >&2
exit $s`

// ttyWrapper is runWrapper for a run on a terminal: one output, so only the marker and status
// (on stdout), and no timeout(1) backstop, which would run the command in a background process
// group where reading the terminal stops it (the client's timeout still ends it). It starts the
// command once the terminal has its size.
const ttyWrapper = `d=$1 mk=$2 ne=$4 c=$5; shift 5
while [ "$ne" -gt 0 ]; do export "$1"; shift; ne=$((ne-1)); done
cd "$d" || { printf '%s%03d' "$mk" 1; exit 1; }
# The terminal's size comes on its own stream: wait (up to 1 s) until it has come.
if command -v stty >/dev/null 2>&1; then
  i=0
  while [ "$i" -lt 100 ]; do
    case "$(stty size 2>/dev/null)" in ""|"0 0") ;; *) break;; esac
    sleep 0.01 2>/dev/null || break
    i=$((i+1))
  done
fi
/bin/sh -c "$c" sh "$@"
s=$?
printf '%s%03d' "$mk" "$s"
exit $s`

// stopScript kills every process of a run: the wrapper (found by its marker, passed in two halves
// so this script's own command line does not contain it), its descendants, and every member of a
// process group led by one of them. It never touches PID 1. It stops them all before it kills
// any, so that no shell among them lives to report its child's death into the output.
const stopScript = `mk="$1$2"
set=" "
for f in /proc/[0-9]*/cmdline; do
  p=${f#/proc/}; p=${p%/cmdline}
  if [ "$p" != 1 ] && [ "$p" != $$ ] && grep -qzF -- "$mk" "$f" 2>/dev/null; then set="$set$p "; fi
done
[ "$set" = " " ] && exit 0
changed=1
while [ $changed = 1 ]; do
  changed=0
  for st in /proc/[0-9]*/stat; do
    p=${st#/proc/}; p=${p%/stat}
    case "$set" in *" $p "*) continue;; esac
    [ "$p" = 1 ] || [ "$p" = $$ ] && continue
    read -r l < "$st" 2>/dev/null || continue
    l=${l##*) }
    set -- $l
    case "$set" in *" $2 "*|*" $3 "*) set="$set$p "; changed=1;; esac
  done
done
kill -STOP $set 2>/dev/null
kill -KILL $set 2>/dev/null
exit 0`

// run executes script with args under runWrapper and collects its output.
type runResult struct {
	exitCode  int
	timedOut  bool
	noTimeout bool
}

func newMarker() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "\x1e~psbx" + hex.EncodeToString(b) + "~"
}

// runArgs are the arguments of runWrapper and channelWrapper for one run.
func runArgs(dir, mk, script string, env map[string]string, args []string, timeout time.Duration) []string {
	backstop := int64(math.MaxInt32)
	if timeout > 0 {
		backstop = int64(math.Ceil(timeout.Seconds())) + 10
	}
	a := []string{dir, mk, strconv.FormatInt(backstop, 10), strconv.Itoa(len(env)), script}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		a = append(a, k+"="+env[k])
	}
	return append(a, args...)
}

// run runs script in dir with env and args. Its stdout and stderr (markers removed) go to
// stdout/stderr; timeout <= 0 means no deadline beyond ctx. It goes through an exec channel when
// the sandbox has them and the call fits one, else through a pods/exec of its own.
func (t *apiTransport) run(ctx context.Context, dir, script string, env map[string]string, args []string,
	stdin io.Reader, stdout, stderr io.Writer, timeout time.Duration) (runResult, error) {
	if t.pool != nil {
		res, err := t.pool.run(ctx, dir, script, env, args, stdin, stdout, stderr, timeout)
		if !errors.Is(err, errNoChannel) {
			t.s.via.Store(ViaChannel)
			return res, err
		}
	}
	t.s.via.Store(ViaExec)
	return t.runExec(ctx, dir, script, env, args, stdin, stdout, stderr, timeout)
}

// runExec is run in a pods/exec of its own.
func (t *apiTransport) runExec(ctx context.Context, dir, script string, env map[string]string, args []string,
	stdin io.Reader, stdout, stderr io.Writer, timeout time.Duration) (runResult, error) {
	return t.runExecTTY(ctx, dir, script, env, args, stdin, stdout, stderr, timeout, nil, nil)
}

// runExecTTY is runExec, on a terminal of size pty when it is not nil (resized from resize; the
// output is all stdout's, and stderr is not used).
func (t *apiTransport) runExecTTY(ctx context.Context, dir, script string, env map[string]string, args []string,
	stdin io.Reader, stdout, stderr io.Writer, timeout time.Duration, pty *TerminalSize, resize <-chan TerminalSize) (runResult, error) {
	mk := newMarker()
	wrapper := runWrapper
	if pty != nil {
		wrapper = ttyWrapper
	}
	argv := append([]string{"/bin/sh", "-c", wrapper, "psbx"}, runArgs(dir, mk, script, env, args, timeout)...)

	out := &markerWriter{w: stdout, marker: []byte(mk)}
	errw := &markerWriter{w: stderr, marker: []byte(mk), status: 3}
	status := errw // the writer whose marker carries the exit status
	if pty != nil {
		out = &markerWriter{w: stdout, marker: []byte(mk), status: 3}
		errw = &markerWriter{done: true} // a terminal has one output
		status = out
	}
	streamCtx, cancelStream := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelStream()
	done := make(chan struct{})
	onEnd := func() {
		if out.seen() && errw.seen() {
			select {
			case <-done:
			default:
				time.AfterFunc(waitDelay, cancelStream) // a background child holds the streams
			}
		}
	}
	out.onEnd, errw.onEnd = onEnd, onEnd

	type result struct {
		code int
		err  error
	}
	resc := make(chan result, 1)
	go func() {
		var code int
		var err error
		if pty != nil {
			code, err = t.streamTTY(streamCtx, argv, stdin, out, nil, &sizeQueue{ctx: streamCtx, first: pty, resize: resize})
		} else {
			code, err = t.stream(streamCtx, argv, stdin, out, errw)
		}
		close(done)
		resc <- result{code, err}
	}()

	var deadline <-chan time.Time
	if timeout > 0 {
		tm := time.NewTimer(timeout)
		defer tm.Stop()
		deadline = tm.C
	}
	var res runResult
	select {
	case r := <-resc:
		if r.err != nil && !(errors.Is(r.err, context.Canceled) && out.seen() && errw.seen()) {
			if streamLost(r.err) && (!out.seen() || !errw.seen()) {
				// The command's end was not seen: stop it, so that it neither finishes unseen
				// nor runs on (a retry would run it twice).
				t.kill(ctx, mk)
				return res, connectionLost(t.s.podName, "the pods/exec stream broke", r.err)
			}
			return res, r.err
		}
		res.exitCode = r.code
	case <-deadline:
		t.kill(ctx, mk)
		cancelStream()
		<-resc
		res.timedOut, res.exitCode = true, TimeoutExitCode
		return res, nil
	case <-ctx.Done():
		t.kill(ctx, mk)
		cancelStream()
		<-resc
		return res, ctx.Err()
	}
	if !out.seen() || !errw.seen() {
		return res, fmt.Errorf("%w: pod %s (exit code %d, %d bytes received)", ErrOutputIncomplete, t.s.podName, res.exitCode, out.n+errw.n)
	}
	switch st := string(status.statusBytes); st {
	case "NTO":
		res.noTimeout = true
	default:
		if n, err := strconv.Atoi(st); err == nil {
			res.exitCode = n // the marker's status is exact even when the stream was closed early
		}
	}
	return res, nil
}

// streamLost reports whether a pods/exec error is a stream that broke after it was set up, not a
// refusal (an API status, a failed upgrade), a cancelled context or a pod that is gone.
func streamLost(err error) bool {
	var st apierrors.APIStatus
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, ErrSandboxGone), errors.As(err, &st), httpstream.IsUpgradeFailure(err):
		return false
	}
	return true
}

// connectionLost is the error of a call whose connection broke before the command's end: the
// command was not run again, and podsandbox stopped it if it still ran.
func connectionLost(pod, what string, err error) error {
	return fmt.Errorf("%w: %w: pod %s: %s before the command's end (%v); it was not run again, and "+
		"podsandbox stopped it if it still ran", ErrConnectionLost, ErrOutputIncomplete, pod, what, err)
}

// kill runs the stop script, bounded, surviving the caller's cancellation: on an idle exec channel
// when there is one, else in a pods/exec of its own.
func (t *apiTransport) kill(ctx context.Context, mk string) {
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	half := len(mk) / 2
	if t.pool != nil {
		if ch := t.pool.tryAcquire(); ch != nil {
			kmk := newMarker()
			_, err := ch.call(kctx, kmk, request(kmk, runArgs("/", kmk, stopScript, nil, []string{mk[:half], mk[half:]}, 0), false), nil, io.Discard, io.Discard, 0)
			t.pool.release(ch)
			if err == nil {
				return
			}
		}
	}
	if _, err := t.stream(kctx, []string{"/bin/sh", "-c", stopScript, "psbx", mk[:half], mk[half:]}, nil, io.Discard, io.Discard); err != nil {
		t.s.log.Warn("could not kill a command after timeout or cancel", "err", err)
	}
}

func (t *apiTransport) exec(ctx context.Context, command string, c ExecConfig) (*ExecuteResponse, error) {
	dir := c.Dir
	if dir == "" {
		dir = t.s.cfg.workDir
	}
	capt := newCapture(c.OutputLimit, c.Stdout, c.Stderr)
	defer capt.close()
	if c.Stdout == nil && c.Stderr == nil && c.OutputFileLimit > 0 {
		capt.keepFile(c.OutputFileLimit)
	}
	stdout, stderr := capt.stream(1), capt.stream(2)
	rctx := ctx
	quiet := func() bool { return false }
	if c.NoOutputTimeout > 0 {
		// Every byte moves the no-output deadline; when it passes, the call ends as a cancelled
		// one does (the stop script kills the command's processes) and reports the timeout.
		qctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		timer := time.AfterFunc(c.NoOutputTimeout, func() { cancel(errNoOutput) })
		defer timer.Stop()
		stdout = pokeWriter{stdout, timer, c.NoOutputTimeout}
		stderr = pokeWriter{stderr, timer, c.NoOutputTimeout}
		rctx = qctx
		quiet = func() bool { return ctx.Err() == nil && errors.Is(context.Cause(qctx), errNoOutput) }
	}
	var res runResult
	var err error
	if c.PTY != nil {
		// A terminal takes a pods/exec of its own: an exec channel has no TTY. Its stdin is
		// always attached (without it the command's stdin is not the terminal), and open until
		// the call is over.
		hold, release := context.WithCancel(ctx)
		defer release()
		stdin := &eofReader{r: c.Stdin, hold: hold.Done()}
		t.s.via.Store(ViaExec)
		res, err = t.runExecTTY(rctx, dir, command, c.Env, nil, stdin, stdout, nil, c.Timeout, c.PTY, c.Resize)
	} else {
		res, err = t.run(rctx, dir, command, c.Env, nil, c.Stdin, stdout, stderr, c.Timeout)
	}
	if quiet() {
		r := capt.response(TimeoutExitCode, true)
		r.NoOutputTimedOut = true
		t.keepOutputFile(ctx, capt, r)
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	if res.noTimeout {
		return nil, fmt.Errorf("%w: %s has no timeout command (API mode needs /bin/sh and timeout; busybox or coreutils provide it)", ErrUnsupportedImage, t.s.cfg.image)
	}
	r := capt.response(res.exitCode, res.timedOut)
	t.keepOutputFile(ctx, capt, r)
	return r, nil
}

// keepOutputFile writes the output a cut call kept (capture.keepFile) to an output file in the
// pod and names it in r. A failure leaves r without a file: the result itself is complete.
func (t *apiTransport) keepOutputFile(ctx context.Context, capt *capture, r *ExecuteResponse) {
	data := capt.fileData()
	if data == nil {
		return
	}
	p, err := t.writeOutputFile(ctx, data)
	if err != nil {
		t.s.log.Warn("could not keep the full output of a cut command", "err", err)
		return
	}
	r.OutputFile = p
}

// errNoOutput is the cause of a call that WithNoOutputTimeout ended.
var errNoOutput = errors.New("no output for the no-output timeout")

// pokeWriter moves a no-output timer on every write.
type pokeWriter struct {
	w io.Writer
	t *time.Timer
	d time.Duration
}

func (p pokeWriter) Write(b []byte) (int, error) {
	p.t.Reset(p.d)
	return p.w.Write(b)
}

// fileTimeout bounds the derived file operations (upstream's FILE_OP_TIMEOUT and SEARCH_TIMEOUT).
const (
	fileTimeout   = 2 * time.Minute
	searchTimeout = 2 * time.Minute
)

// script runs a file-operation script and returns its stdout; non-zero exits are returned as code.
func (t *apiTransport) script(ctx context.Context, script string, stdin io.Reader, timeout time.Duration, args ...string) ([]byte, []byte, int, error) {
	var out, errb bytes.Buffer
	res, err := t.run(ctx, "/", script, nil, args, stdin, &out, &errb, timeout)
	if err != nil {
		return nil, nil, 0, err
	}
	if res.timedOut {
		return nil, nil, 0, fmt.Errorf("podsandbox: file operation timed out after %s", timeout)
	}
	return out.Bytes(), errb.Bytes(), res.exitCode, nil
}

// Exit codes of the file scripts.
const (
	exNotFound = 3
	exIsDir    = 4
	exNotDir   = 5
	exTooLarge = 6
)

func pathErr(op, p string, code int, stderr []byte) error {
	switch code {
	case exNotFound:
		return &PathError{Op: op, Path: p, Err: ErrNotFound}
	case exIsDir:
		return &PathError{Op: op, Path: p, Err: ErrIsDirectory}
	case exNotDir:
		return &PathError{Op: op, Path: p, Err: ErrNotDirectory}
	}
	return &PathError{Op: op, Path: p, Err: fmt.Errorf("exit code %d: %s", code, strings.TrimSpace(string(stderr)))}
}

const readScript = `f=$1
[ -e "$f" ] || exit 3
[ -d "$f" ] && exit 4
exec head -c "$2" -- "$f"`

func (t *apiTransport) readBytes(ctx context.Context, p string) ([]byte, error) {
	limit := t.s.cfg.maxFileBytes
	out, errb, code, err := t.script(ctx, readScript, nil, fileTimeout, p, strconv.FormatInt(limit+1, 10))
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, pathErr("read", p, code, errb)
	}
	if int64(len(out)) > limit {
		size := int64(-1)
		if o, _, c, err := t.script(ctx, `stat -c %s -- "$1"`, nil, fileTimeout, p); err == nil && c == 0 {
			size, _ = strconv.ParseInt(strings.TrimSpace(string(o)), 10, 64)
		}
		return nil, &FileTooLargeError{Path: p, Size: size, Limit: limit}
	}
	return out, nil
}

func (t *apiTransport) read(ctx context.Context, p string, offset, limit int) (string, error) {
	data, err := t.readBytes(ctx, p)
	if err != nil {
		return "", err
	}
	return formatRead(p, data, offset, limit)
}

func formatRead(p string, data []byte, offset, limit int) (string, error) {
	s, err := fileops.FormatRead(data, offset, limit)
	var oe *fileops.OffsetError
	if errors.As(err, &oe) {
		return "", &OffsetError{Path: p, Offset: oe.Offset, Lines: oe.Lines}
	}
	return s, err
}

// writeScript writes stdin to a temporary file beside the target, checks the byte count (a
// connection lost mid-upload must not leave a short file) and renames it into place.
const writeScript = `f=$1 n=$2
[ -d "$f" ] && exit 4
d=${f%/*}; [ -n "$d" ] || d=/
mkdir -p -- "$d" || exit 1
tmp="$d/.psbx-tmp.$$"
if cat > "$tmp" && [ "$(wc -c < "$tmp")" -eq "$n" ] && mv -f -- "$tmp" "$f"; then exit 0; fi
rm -f -- "$tmp"; exit 1`

func (t *apiTransport) write(ctx context.Context, p string, content []byte) (int, error) {
	_, errb, code, err := t.script(ctx, writeScript, bytes.NewReader(content), fileTimeout, p, strconv.Itoa(len(content)))
	if err != nil {
		return 0, err
	}
	if code != 0 {
		return 0, pathErr("write", p, code, errb)
	}
	return len(content), nil
}

func (t *apiTransport) edit(ctx context.Context, p, old, new string, replaceAll bool) (int, error) {
	data, err := t.readBytes(ctx, p)
	if err != nil {
		return 0, err
	}
	out, n, err := applyEdit(p, data, old, new, replaceAll)
	if err != nil {
		return 0, err
	}
	if int64(len(out)) > t.s.cfg.maxFileBytes {
		return 0, &FileTooLargeError{Path: p, Size: int64(len(out)), Limit: t.s.cfg.maxFileBytes}
	}
	if _, err := t.write(ctx, p, out); err != nil {
		return 0, err
	}
	return n, nil
}

func applyEdit(p string, data []byte, old, new string, replaceAll bool) ([]byte, int, error) {
	out, n, err := fileops.ApplyEdit(data, old, new, replaceAll)
	var ce *fileops.CountError
	switch {
	case errors.As(err, &ce):
		return nil, 0, &EditError{Path: p, Old: old, Count: ce.Count}
	case errors.Is(err, fileops.ErrEmptyOld):
		return nil, 0, fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	return out, n, err
}

// lsScript prints the directory's entries as NUL-terminated records "name", "d" or "f", then one
// "size mtime" line per entry from a single stat call, in the same order.
const lsScript = `d=$1
[ -e "$d" ] || exit 3
[ -d "$d" ] || exit 5
cd -- "$d" || exit 1
set --
for f in * .[!.]* ..?*; do
  if [ -e "$f" ] || [ -L "$f" ]; then set -- "$@" "$f"; fi
done
[ $# -eq 0 ] && exit 0
for f; do if [ -d "$f" ]; then printf '%s\0d\0' "$f"; else printf '%s\0f\0' "$f"; fi; done
printf '\0'
exec stat -c '%s %Y' -- "$@"`

func (t *apiTransport) ls(ctx context.Context, dir string) ([]fileops.Entry, error) {
	out, errb, code, err := t.script(ctx, lsScript, nil, fileTimeout, dir)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, pathErr("ls", dir, code, errb)
	}
	if len(out) == 0 {
		return []fileops.Entry{}, nil
	}
	head, stats, ok := bytes.Cut(out, []byte{0, 0})
	fields := strings.Split(string(head), "\x00")
	lines := strings.Split(strings.TrimSuffix(string(stats), "\n"), "\n")
	if !ok || len(fields)%2 != 0 || len(lines) != len(fields)/2 {
		return nil, fmt.Errorf("podsandbox: ls %s: unexpected listing from the pod", dir)
	}
	es := make([]fileops.Entry, 0, len(lines))
	for i := range lines {
		name := fields[2*i]
		var size, mtime int64
		fmt.Sscan(lines[i], &size, &mtime)
		es = append(es, fileops.Entry{Name: name, Path: path.Join(dir, name), IsDir: fields[2*i+1] == "d",
			Size: size, ModTime: time.Unix(mtime, 0).UTC()})
	}
	fileops.SortLs(es)
	return es, nil
}

// globScript lists every regular file under the root, NUL-terminated. The root is given as "dir/"
// so that a symlinked root is followed, as the in-pod server does. find's exit status is ignored:
// one unreadable directory must not lose the other results (upstream bug).
const globScript = `[ -d "$1" ] || exit 0
find "$1/" -type f -print0 2>/dev/null
exit 0`

func (t *apiTransport) glob(ctx context.Context, pattern, root string) ([]fileops.Entry, error) {
	out, errb, code, err := t.script(ctx, globScript, nil, searchTimeout, root)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, pathErr("glob", root, code, errb)
	}
	return globFilter(pattern, root, strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")), nil
}

// globFilter keeps the files whose root-relative path matches pattern, sorted by path.
func globFilter(pattern, root string, files []string) []fileops.Entry {
	es := []fileops.Entry{}
	prefix := strings.TrimSuffix(root, "/") + "/"
	for _, f := range files {
		rel, ok := strings.CutPrefix(f, prefix)
		if !ok || rel == "" {
			continue
		}
		if fileops.MatchGlob(pattern, rel) {
			es = append(es, fileops.Entry{Name: path.Base(f), Path: f})
		}
	}
	fileops.SortByPath(es)
	return es
}

// grepScript lists the candidate files (NUL-terminated), an empty record, then grep's output for
// them. The include glob arrives as an argument and the pattern on stdin, as one line that grep
// reads with -f: the pattern of ere.Prefilter is bytes, not UTF-8, and the arguments of pods/exec
// must be UTF-8 (the CRI's gRPC refuses them otherwise). grep gets the files after --, so nothing
// the caller sends is read as an option or as shell text. grep runs in the C locale, where that
// pattern is meant to be read, and where GNU grep does not take a file that is not valid UTF-8 for
// binary (the python image sets C.UTF-8).
const grepScript = `root=$1 inc=$2 hid=$3 pf="/tmp/.psbx-grep.$$.pat"
cat > "$pf"
[ -e "$root" ] || { rm -f "$pf"; exit 3; }
if [ -d "$root" ]; then
  if [ "$hid" = 1 ]; then find "$root/" -type f -name "$inc" -print0 2>/dev/null
  else find "$root/" -mindepth 1 -name '.*' -prune -o -type f -name "$inc" -print0 2>/dev/null; fi
else printf '%s\0' "$root"; fi > "/tmp/.psbx-grep.$$"
cat "/tmp/.psbx-grep.$$"; printf '\0'
LC_ALL=C xargs -0 grep -nHE -f "$pf" -- < "/tmp/.psbx-grep.$$" 2>/dev/null
rm -f "/tmp/.psbx-grep.$$" "$pf"
exit 0`

// grep runs grep -E with ere.Prefilter's form of the pattern, which selects every line Go's regexp
// matches and possibly more, then keeps the lines Go's regexp matches: the lines the in-pod server
// selects, also in files that are not valid UTF-8 (where Go reads each invalid byte as U+FFFD).
func (t *apiTransport) grep(ctx context.Context, pattern, root, glob string, hidden bool) ([]GrepMatch, error) {
	pre, err := ere.Prefilter(pattern)
	if err != nil {
		return nil, fmt.Errorf("%w: grep pattern: %v", ErrInvalidArgument, err)
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("%w: grep pattern: %v", ErrInvalidArgument, err)
	}
	inc := glob
	if inc == "" {
		inc = "*"
	}
	h := "0"
	if hidden {
		h = "1"
	}
	out, errb, code, err := t.script(ctx, grepScript, strings.NewReader(pre+"\n"), searchTimeout, root, inc, h)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, pathErr("grep", root, code, errb)
	}
	return parseGrep(out, re), nil
}

// parseGrep splits the file list from grep's "path:line:text" output and keeps the lines that re
// matches (all of them if re is nil). Paths are recognised by the list, so a ":" or a newline inside
// a file name does not confuse the parse: each record is read from where the last one ended, not
// from a split into lines.
func parseGrep(out []byte, re *regexp.Regexp) []GrepMatch {
	list, body, _ := bytes.Cut(out, []byte{0, 0})
	known := map[string]bool{}
	for _, f := range strings.Split(string(list), "\x00") {
		known[f] = true
	}
	ms := []GrepMatch{}
	for rest := string(body); rest != ""; {
		path, n, text, next, ok := grepRecord(rest, known)
		rest = next
		if !ok || strings.ContainsRune(text, 0) || (re != nil && !re.MatchString(text)) {
			continue
		}
		ms = append(ms, GrepMatch{Path: path, LineNumber: n, Line: jsonText(text)})
	}
	fileops.SortGrep(ms, func(m GrepMatch) (string, int) { return m.Path, m.LineNumber })
	return ms
}

// maxGrepPath bounds how far grepRecord looks for the end of a path (Linux's PATH_MAX).
const maxGrepPath = 4096

// grepRecord reads the record at the start of s: a path of the list (it may hold ':' and newlines),
// ':', a line number, ':', and the line's text up to a newline. When s does not start with one (a
// "Binary file ... matches" line), ok is false; next is always where the following record starts.
func grepRecord(s string, known map[string]bool) (path string, n int, text, next string, ok bool) {
	for i := 0; i < len(s) && i <= maxGrepPath; i++ {
		if s[i] != ':' || !known[s[:i]] {
			continue
		}
		rest := s[i+1:]
		j := strings.IndexByte(rest, ':')
		if j <= 0 {
			continue
		}
		num, err := strconv.Atoi(rest[:j])
		if err != nil {
			continue
		}
		text, next, _ = strings.Cut(rest[j+1:], "\n")
		return s[:i], num, text, next, true
	}
	_, next, _ = strings.Cut(s, "\n")
	return "", 0, "", next, false
}

// jsonText is s as the in-pod server's JSON answer carries it: every byte that is not part of valid
// UTF-8 becomes U+FFFD (strings.ToValidUTF8 would make one U+FFFD of a run of them).
func jsonText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func (t *apiTransport) exists(ctx context.Context, p string) (bool, error) {
	_, _, code, err := t.script(ctx, `[ -f "$1" ]`, nil, fileTimeout, p)
	if err != nil {
		return false, err
	}
	return code == 0, nil
}

// markerWriter passes a stream through, holding back enough bytes to recognise the run's end
// marker (and, on stderr, the 3-byte status after it). Bytes after the marker (a background child
// still writing) are dropped.
type markerWriter struct {
	w           io.Writer
	marker      []byte
	status      int
	onEnd       func()
	mu          sync.Mutex
	buf         []byte
	done        bool
	statusBytes []byte
	n           int
	mute        bool // the command was stopped: what it writes from now on is dropped
}

// silence drops the output that follows: a stopped command's last words (a shell reporting
// "Killed") are not part of its result, as with a stream closed at once.
func (m *markerWriter) silence() {
	m.mu.Lock()
	m.mute = true
	m.mu.Unlock()
}

func (m *markerWriter) Write(p []byte) (int, error) {
	m.mu.Lock()
	if m.done {
		m.mu.Unlock()
		return len(p), nil
	}
	m.buf = append(m.buf, p...)
	var flush []byte
	ended := false
	if i := bytes.Index(m.buf, m.marker); i >= 0 {
		flush = append(flush, m.buf[:i]...)
		if rest := m.buf[i+len(m.marker):]; len(rest) >= m.status {
			m.statusBytes = append([]byte(nil), rest[:m.status]...)
			m.buf, m.done, ended = nil, true, true
		} else {
			m.buf = append([]byte(nil), m.buf[i:]...)
		}
	} else {
		// Hold back only a tail that could be the start of the marker, so output is passed on
		// (and interleaves with the other stream) as soon as it arrives.
		k := partialPrefix(m.buf, m.marker)
		flush = append(flush, m.buf[:len(m.buf)-k]...)
		m.buf = append([]byte(nil), m.buf[len(m.buf)-k:]...)
	}
	m.n += len(flush)
	mute := m.mute
	m.mu.Unlock()
	if len(flush) > 0 && m.w != nil && !mute {
		if _, err := m.w.Write(flush); err != nil {
			return 0, err
		}
	}
	if ended && m.onEnd != nil {
		m.onEnd()
	}
	return len(p), nil
}

// partialPrefix returns the length of the longest suffix of b that is a proper prefix of marker.
func partialPrefix(b, marker []byte) int {
	for k := min(len(b), len(marker)-1); k > 0; k-- {
		if bytes.HasSuffix(b, marker[:k]) {
			return k
		}
	}
	return 0
}

func (m *markerWriter) seen() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.done
}
