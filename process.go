package podsandbox

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/podsandbox/podsandbox/internal/wire"
)

// Background processes: commands that run detached from any call, such as dev servers, watchers
// and long builds. Each one is run by a small /bin/sh supervisor in the pod, so they work the same
// on every transport and with any image that has /bin/sh, setsid, mkfifo, cat and wc:
//
//   - The supervisor runs in a session of its own, so it outlives the call that started it, the
//     connection, and the client process. The command runs in a session (and process group) of its
//     own too, so a signal reaches the command and all its children but not the supervisor.
//   - Everything lives under /tmp/.psbx-proc/ID (mode 0700): the command, the pids, stdout and
//     stderr (each bounded, see WithOutputLimit), start and end times, and the exit code, written
//     atomically when the command has exited and its output has been read.
//   - Any KubernetesPodSandbox value that reaches the pod sees the same processes: a second
//     replica, or the same service after a restart that adopted the pod (Process re-attaches by id).
//   - User data (the command, the environment) travels only as environment values of the
//     starting call; no script text is ever built from it.
//
// Deleting the pod ends its processes; Remove ends one and deletes what it kept.

// ErrNoProcess: the sandbox has no background process with that id (never started, or removed).
var ErrNoProcess = errors.New("no such background process")

// DefaultProcessOutputLimit is how many bytes of each of a background process's stdout and stderr
// the pod keeps unless WithOutputLimit says otherwise; later output is read and dropped, and the
// status says so. The default pod's /tmp holds 256 MiB, so keep the sum over live processes below.
const DefaultProcessOutputLimit = 8 << 20

// ProcessState is where a background process is in its life.
type ProcessState string

const (
	// ProcessRunning: the command has not exited yet.
	ProcessRunning ProcessState = "running"
	// ProcessExited: the command exited; ExitCode holds its status.
	ProcessExited ProcessState = "exited"
	// ProcessLost: the supervisor is gone without recording an exit code (it was killed, or the
	// container restarted). The command's fate is unknown.
	ProcessLost ProcessState = "lost"
)

// ProcessStatus is a background process's state as the pod records it.
type ProcessStatus struct {
	ID      string
	Command string
	// PGID is the command's process id, which is also its process group and session id.
	PGID  int
	State ProcessState
	// ExitCode is the command's status when State is ProcessExited: 0-255, or 128+n for signal n.
	ExitCode int
	// StartedAt and EndedAt are to the second, as the pod's clock tells them (EndedAt is zero until
	// the command exits).
	StartedAt, EndedAt time.Time
	// StdoutBytes and StderrBytes are how many bytes of each stream the pod holds.
	StdoutBytes, StderrBytes int64
	// StdoutTruncated and StderrTruncated report output dropped past the process's output limit.
	StdoutTruncated, StderrTruncated bool
	// OutputDone is true once both streams reached end of file: no more output can arrive. It
	// stays false after exit while a child that the command left running holds stdout or stderr.
	OutputDone bool
	// TimedOut is set when the in-pod server killed the command at the timeout of the Execute
	// that ran it (WithReattach or WithRequestID in HTTP mode).
	TimedOut bool
}

// Cursor is a position in a background process's output: byte offsets into stdout and stderr.
type Cursor struct {
	Stdout, Stderr int64
}

// ProcessOutput is one read of a background process's output.
type ProcessOutput struct {
	Status         ProcessStatus
	Stdout, Stderr []byte
	// Next is where the following read starts.
	Next Cursor
}

// Process is a handle on a background process in a sandbox. It holds no connection and no
// goroutine: every method is one call to the pod, so a handle can be dropped, or made again from
// the id by KubernetesPodSandbox.Process from any process that reaches the pod.
type Process struct {
	sb *KubernetesPodSandbox
	id string
}

// ID is the process's stable id, unique within its sandbox.
func (p *Process) ID() string { return p.id }

// processRoot is where the supervisors keep their state. Every pod podsandbox makes has a
// writable /tmp (an emptyDir), and /tmp is where an image without one must still let a process
// write.
const processRoot = wire.ProcessRoot

var processID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Exit codes of the process scripts.
const (
	procNoSuch  = 3
	procDone    = 4
	procNoStdin = 5
	procIDTaken = 96
	procNoTool  = 97
)

// procLaunch makes the process's directory and starts the supervisor in a session of its own,
// then waits until the command has started: the supervisor writes a line to the FIFO "ready",
// which this script holds open for reading and writing, so neither side blocks on the other's
// open (a watchdog writes to it after 20 s, should the supervisor never come). The supervisor is
// the child of a subshell that exits at once, so it belongs to no process tree of the call: a
// call cut off and killed after this point (a lost connection, a cancel) no longer reaches it,
// and a retry with the same id finds it. The data arrives as environment values: PSBX_ID,
// PSBX_CMD, PSBX_MAX (bytes per stream), and PSBX_SUP (procSupervisor; constant text). The size
// of the shell's ulimit -f block (512 bytes, or 1024 where /bin/sh is bash) is measured once per
// pod and kept in the root's "unit" file.
const procLaunch = launchBody + `exit 0`

// launchBody is procLaunch but its exit.
const launchBody = `for t in setsid mkfifo cat wc; do
  command -v "$t" >/dev/null 2>&1 || { echo "the image has no $t, which background processes need" >&2; exit 97; }
done
r=` + processRoot + ` d=` + processRoot + `/$PSBX_ID
um=$(umask)
umask 077
[ -d "$r" ] || mkdir -p "$r" || exit 98
mkdir "$d" 2>/dev/null || { echo "process id $PSBX_ID is taken" >&2; exit 96; }
if [ ! -s "$r/unit" ]; then
  (ulimit -f 1; trap '' XFSZ; cat /dev/zero > "$d/unit") 2>/dev/null
  wc -c < "$d/unit" > "$r/unit"
fi
read -r u < "$r/unit"
[ "$u" -gt 0 ] 2>/dev/null || u=512
printf '%s' "$PSBX_CMD" > "$d/cmd" && : > "$d/out" && : > "$d/err" && mkfifo "$d/ready" "$d/out.fifo" "$d/err.fifo" || exit 98
if [ -n "$PSBX_AUTO" ]; then
  # A call's own record (WithReattach): kept after its end for a retry whose answer was lost, and
  # removed 2 minutes after its end, when a later call starts.
  : > "$d/auto"
  find "$r" -mindepth 2 -maxdepth 2 -name exit -mmin +2 2>/dev/null | while read -r f; do
    [ -e "${f%/exit}/auto" ] && rm -rf "${f%/exit}"
  done
fi
if [ -n "$PSBX_STDIN" ]; then mkfifo "$d/in.fifo" || exit 98; fi
exec 3<> "$d/ready"
(PSBX_UMASK=$um PSBX_BLOCKS=$(((PSBX_MAX + u - 1) / u)) setsid /bin/sh -c "$PSBX_SUP" psbx-proc "$d" </dev/null >/dev/null 2>&1 3>&- &)
(sleep 20; echo timeout >&3) >/dev/null 2>&1 &
w=$!
read -r x <&3
kill "$w" 2>/dev/null
[ "$x" = ok ] || { echo "the supervisor did not start the command within 20 s" >&2; exit 98; }
`

// procSupervisor runs the command ($PSBX_CMD) with its output through two FIFOs into files capped
// with ulimit -f (a reader that reaches the cap fails with EFBIG, marks the stream cut, and reads
// and drops the rest, so the command never sees a broken pipe). Once the command has exited and both streams reached
// end of file, or 2 s later when a child the command left holds them (a watchdog's USR1 ends the
// wait for the readers), it writes "CODE ENDTIME" to "exit" in one write: a reader takes an
// empty file for no exit yet.
const procSupervisor = `d=$1 c=$PSBX_CMD b=$PSBX_BLOCKS um=$PSBX_UMASK
unset PSBX_CMD PSBX_MAX PSBX_UMASK PSBX_ID PSBX_SUP PSBX_BLOCKS PSBX_STDIN PSBX_AUTO PSBX_A0 PSBX_A1 PSBX_A2
echo $$ > "$d/spid"
readers=
for s in out err; do
  (ulimit -f "$b"; trap '' XFSZ
   { cat > "$d/$s" || { : > "$d/$s.cut"; cat > /dev/null; }; : > "$d/$s.eof"; } < "$d/$s.fifo") 2>/dev/null &
  readers="$readers $!"
done
in=/dev/null h=
if [ -p "$d/in.fifo" ]; then
  # The holder keeps a writer on the stdin FIFO, so the command sees no end of file between
  # writes; killing it (CloseStdin, or the command's end) closes stdin.
  in=$d/in.fifo
  sleep 999999999 > "$in" 2>/dev/null &
  h=$!
  echo "$h" > "$d/inpid"
fi
umask "$um"
setsid /bin/sh -c "$c" sh < "$in" > "$d/out.fifo" 2> "$d/err.fifo" &
p=$!
umask 077
# The child calls setsid right after the fork: wait until its group exists (or it is gone
# already), so that a signal sent the moment the launch returns finds it.
i=0
until kill -0 -"$p" 2>/dev/null; do
  read -r l < "/proc/$p/stat" 2>/dev/null || break
  case ${l##*) } in Z*|X*) break;; esac
  i=$((i+1))
  [ "$i" -gt 500 ] && break
  sleep 0.01 2>/dev/null || sleep 1
done
echo "$p" > "$d/pgid"
echo ok 1<> "$d/ready"
date +%s > "$d/started"
wait "$p"
s=$?
[ -n "$h" ] && kill "$h" 2>/dev/null
(sleep 2; kill -s USR1 $$) >/dev/null 2>&1 &
w=$!
trap : USR1
wait $readers
kill "$w" 2>/dev/null
echo "$s $(date +%s)" > "$d/exit"`

// procRecord defines rec DIR, which prints a process's record: "key=value" lines, then
// "cmd=N", a newline, and the command's N bytes (N is 0 unless $withcmd is set). "alive" is read
// before "exit", so a supervisor seen dead without an exit code really died without one. It
// leaves the stream sizes in osz and esz. It runs one process (wc) without the command, and three
// more with it: the rest is shell builtins, because a follower calls it often.
const procRecord = `rec() {
  d=$1 xd= eofs=
  printf 'id=%s\n' "${d##*/}"
  a=0
  if read -r sp < "$d/spid" 2>/dev/null && read -r l < "/proc/$sp/stat" 2>/dev/null; then
    case ${l##*) } in Z*|X*) ;; *) a=1;; esac
  fi
  printf 'alive=%s\n' "$a"
  if read -r v < "$d/pgid" 2>/dev/null; then printf 'pgid=%s\n' "$v"; fi
  if read -r v < "$d/started" 2>/dev/null; then printf 'started=%s\n' "$v"; fi
  if [ -s "$d/exit" ] && read -r v < "$d/exit"; then printf 'exit=%s\n' "$v"; xd=1; fi
  if [ -e "$d/timedout" ]; then printf 'timedout=1\n'; fi
  for s in out err; do
    if [ -e "$d/$s.cut" ]; then printf '%scut=1\n' "$s"; fi
    if [ -e "$d/$s.eof" ]; then printf '%seof=1\n' "$s"; eofs=$eofs$s; fi
  done
  set -- $(wc -c "$d/cmd" "$d/out" "$d/err" 2>/dev/null)
  osz=${3:-0} esz=${5:-0}
  printf 'outsize=%s\nerrsize=%s\n' "$osz" "$esz"
  if [ -n "$withcmd" ]; then
    # Read once, then count what was read: a record removed meanwhile gives an empty command, not
    # a count that the bytes do not match ("x" keeps trailing newlines).
    c=$(cat "$d/cmd" 2>/dev/null; echo x)
    c=${c%x}
    printf 'cmd=%s\n' "$(($(printf '%s' "$c" | wc -c)))"
    printf '%s' "$c"
  else
    printf 'cmd=0\n'
  fi
}
`

// procPeek waits up to $5 seconds for output past offset $2 of stdout or $3 of stderr, or for the
// process to end (polling every 10 ms for the first 200 ms, then every 100 ms), then prints the
// record of process $1 (with its command if $6 is set), and up to $4 bytes of stdout from offset
// $2 and of stderr from offset $3, each as "\noutdata=N" (or "errdata=N"), a newline, and N
// bytes. The files only grow, so the N bytes counted are there to read.
const procPeek = procRecord + `d=` + processRoot + `/$1
[ -e "$d/cmd" ] || exit 3
o1=$2 o2=$3 max=$4 wt=$5 withcmd=$6
` + peekBody + `exit 0`

// peekBody is procPeek's work, on $d from $o1 and $o2, up to $max bytes, waiting up to $wt
// seconds; it sets part when it printed less than all the output there is.
const peekBody = `ms=0 grace=
while [ "$ms" -lt $((wt * 1000)) ] && [ ! -s "$d/exit" ]; do
  set -- $(wc -c "$d/out" "$d/err" 2>/dev/null)
  if [ "${1:-0}" -gt "$o1" ] || [ "${3:-0}" -gt "$o2" ]; then
    # Output: give the exit 30 ms to follow it, so a short command's end costs one call, not two.
    [ -z "$grace" ] && grace=$((ms + 30))
    [ "$ms" -ge "$grace" ] && break
  fi
  read -r sp < "$d/spid" 2>/dev/null || break
  read -r l < "/proc/$sp/stat" 2>/dev/null || break
  case ${l##*) } in Z*|X*) break;; esac
  if [ "$ms" -lt 200 ]; then
    sleep 0.01 2>/dev/null || { sleep 1; ms=$((ms + 990)); }
    ms=$((ms + 10))
  else
    sleep 0.1 2>/dev/null || { sleep 1; ms=$((ms + 900)); }
    ms=$((ms + 100))
  fi
done
rec "$d"
for s in out err; do
  if [ "$s" = out ]; then o=$o1 n=$((osz - o1)); else o=$o2 n=$((esz - o2)); fi
  [ "$n" -gt "$max" ] && { n=$max; part=1; }
  [ "$n" -lt 0 ] && n=0
  printf '\n%sdata=%s\n' "$s" "$n"
  if [ "$n" -gt 0 ]; then tail -c +$((o + 1)) "$d/$s" | head -c "$n"; fi
done
`

// procRun starts process $1 as procLaunch does (same environment values), then reads it as
// procPeek does from the start (up to $2 bytes of each stream, waiting up to $3 seconds): a short
// command made WithReattach costs one call. Its record is not removed here, since the answer may
// be lost on the way (a retry must find the result): a call's own record is marked "auto" at the
// launch (PSBX_AUTO) and expires (see launchBody).
const procRun = procRecord + launchBody + `o1=0 o2=0 max=$2 wt=$3 withcmd= part=
` + peekBody + `exit 0`

// procWait waits up to $2 seconds for process $1 to exit (or its supervisor to die), then prints
// its record.
const procWait = procRecord + `d=` + processRoot + `/$1 withcmd=1
[ -e "$d/cmd" ] || exit 3
i=0
while [ ! -s "$d/exit" ] && [ "$i" -lt $(($2 * 10)) ]; do
  read -r sp < "$d/spid" 2>/dev/null || break
  read -r l < "/proc/$sp/stat" 2>/dev/null || break
  case ${l##*) } in Z*|X*) break;; esac
  i=$((i+1))
  sleep 0.1 2>/dev/null || { sleep 1; i=$((i+9)); }
done
rec "$d"
exit 0`

// procList prints the records of every process, each followed by a newline. The in-pod server's
// records of calls made WithReattach (marked "auto": they expire by themselves) are calls, not
// background processes: they are left out.
const procList = procRecord + `withcmd=1
for d in ` + processRoot + `/*; do
  [ -e "$d/cmd" ] || continue
  [ -e "$d/auto" ] && continue
  rec "$d"
  printf '\n'
done
exit 0`

// procSignal sends signal $2 to the process group of process $1.
const procSignal = `d=` + processRoot + `/$1
[ -e "$d/cmd" ] || exit 3
[ -s "$d/exit" ] && exit 4
read -r pg < "$d/pgid" || exit 4
kill -"$2" -"$pg" 2>/dev/null || exit 4
exit 0`

// procStdin writes the call's stdin to process $1's stdin. The FIFO is opened for reading and
// writing, so the open never blocks on a command that is gone; a command that does not read
// blocks the write when the pipe is full, until the call's timeout. A refused write still reads
// its input to the end: a request whose body is left unread can lose its answer to the
// connection's reset (in HTTP mode, under load).
const procStdin = `d=` + processRoot + `/$1 e=0
if [ ! -e "$d/cmd" ]; then e=3
elif [ ! -p "$d/in.fifo" ]; then echo "the process was started without WithOpenStdin" >&2; e=5
elif [ -s "$d/exit" ]; then e=4
elif [ -e "$d/in.closed" ]; then echo "its stdin is closed" >&2; e=5
fi
if [ "$e" != 0 ]; then cat > /dev/null; exit "$e"; fi
cat 1<> "$d/in.fifo" || exit 98
exit 0`

// procCloseStdin ends process $1's stdin: the command reads end of file once it has read what
// was written.
const procCloseStdin = `d=` + processRoot + `/$1
[ -e "$d/cmd" ] || exit 3
[ -p "$d/in.fifo" ] || { echo "the process was started without WithOpenStdin" >&2; exit 5; }
: > "$d/in.closed"
if read -r h < "$d/inpid" 2>/dev/null; then kill "$h" 2>/dev/null; fi
exit 0`

// procRemove kills process $1's group and its supervisor (with the readers of its output), then
// deletes its directory. A record the in-pod server keeps (marked "server") has the server for its
// supervisor: only the command's group is killed.
const procRemove = `d=` + processRoot + `/$1
[ -e "$d/cmd" ] || exit 3
if [ ! -s "$d/exit" ]; then
  if read -r pg < "$d/pgid" 2>/dev/null; then kill -9 -"$pg" 2>/dev/null; fi
  if [ ! -e "$d/server" ] && read -r sp < "$d/spid" 2>/dev/null; then kill -9 -"$sp" 2>/dev/null; fi
fi
rm -rf "$d"
exit 0`

// StartProcess starts command with /bin/sh -c in the background and returns once it runs. It keeps
// running after the call, the connection and the caller are gone, until it exits, Remove or Kill
// ends it, or the pod is deleted. Options: WithExecEnv and WithDir as for Execute, and
// WithOutputLimit for how many bytes of each of stdout and stderr the pod keeps
// (DefaultProcessOutputLimit). A background process has no stdin, and no timeout: WithStdin,
// WithStdout, WithStderr and WithTimeout are refused (read the output with ReadOutput or Follow;
// end it with Signal or Kill).
func (s *KubernetesPodSandbox) StartProcess(ctx context.Context, command string, opts ...ExecOption) (*Process, error) {
	var c ExecConfig
	for _, o := range opts {
		o(&c)
	}
	switch {
	case c.Stdin != nil:
		return nil, fmt.Errorf("%w: a background process takes its input with WithOpenStdin and Process.WriteStdin, not WithStdin", ErrInvalidArgument)
	case c.Stdout != nil || c.Stderr != nil:
		return nil, fmt.Errorf("%w: a background process's output is read with ReadOutput or Follow, not WithStdout or WithStderr", ErrInvalidArgument)
	case c.Timeout != 0:
		return nil, fmt.Errorf("%w: a background process has no timeout: end it with Signal or Kill (or run it under timeout(1))", ErrInvalidArgument)
	case c.OutputLimit < 0:
		return nil, fmt.Errorf("%w: output limit %d", ErrInvalidArgument, c.OutputLimit)
	}
	if strings.TrimSpace(command) == "" {
		return nil, fmt.Errorf("%w: empty command", ErrInvalidArgument)
	}
	if c.OutputLimit == 0 {
		c.OutputLimit = DefaultProcessOutputLimit
	}
	for k := range c.Env {
		if strings.HasPrefix(k, "PSBX_") {
			return nil, fmt.Errorf("%w: env name %q: the PSBX_ prefix is the supervisor's", ErrInvalidArgument, k)
		}
	}
	env := c.Env
	if c.OpenStdin {
		env = maps.Clone(env)
		if env == nil {
			env = map[string]string{}
		}
		env["PSBX_STDIN"] = "1"
	}
	id := newProcessID()
	if err := s.startProcess(ctx, id, command, env, c.Dir, c.OutputLimit); err != nil {
		return nil, err
	}
	return &Process{sb: s, id: id}, nil
}

// WithOpenStdin keeps a background process's standard input open (StartProcess only): the
// process reads what Process.WriteStdin writes, and end of file after Process.CloseStdin or
// Remove. Without it, a background process's stdin is /dev/null.
func WithOpenStdin() ExecOption { return func(c *ExecConfig) { c.OpenStdin = true } }

// WriteStdin writes everything r holds to the process's standard input (started WithOpenStdin),
// in one call that ends when the process has taken it into its stdin pipe. A process that does
// not read blocks the call once the pipe is full (64 KiB on Linux), until ctx ends it. It fails
// with os.ErrProcessDone when the process has exited, and with ErrInvalidArgument when the
// process was started without WithOpenStdin or its stdin is closed.
func (p *Process) WriteStdin(ctx context.Context, r io.Reader) error {
	if !processID.MatchString(p.id) {
		return fmt.Errorf("%w: process id %q", ErrNoProcess, p.id)
	}
	deadline := DefaultExecTimeout
	if d, ok := ctx.Deadline(); ok {
		deadline = max(time.Until(d), time.Second)
	}
	res, err := p.sb.Execute(ctx, "set -- \"$PSBX_A0\"\n"+procStdin, WithExecEnv(map[string]string{"PSBX_A0": p.id}),
		WithStdin(r), WithTimeout(deadline), WithOutputLimit(4096))
	if err != nil {
		return fmt.Errorf("podsandbox: background process: %w", err)
	}
	if res.TimedOut {
		return fmt.Errorf("podsandbox: background process %s did not take its input in time", p.id)
	}
	return procExit(res, p.id)
}

// CloseStdin closes the process's standard input (started WithOpenStdin): it reads end of file
// after what was written. Closing it again is a no-op.
func (p *Process) CloseStdin(ctx context.Context) error {
	_, err := p.call(ctx, procCloseStdin, 30*time.Second)
	return err
}

func newProcessID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "p-" + hex.EncodeToString(b[:])
}

// errTimedOut is the cause of a reattaching call's context when its timeout fires.
var errTimedOut = errors.New("command timed out")

// errNoDurable: the transport cannot run a durable exec (the agent takes the shell path).
var errNoDurable = errors.New("no in-pod server for a durable exec")

// errProcIDTaken: a process with the id exists already.
var errProcIDTaken = errors.New("process id is taken")

// startProcess starts command as process id. dir is resolved already.
func (s *KubernetesPodSandbox) startProcess(ctx context.Context, id, command string, userEnv map[string]string, dir string, limit int) error {
	ex := []ExecOption{WithExecEnv(launchEnv(id, command, limit, userEnv)), WithTimeout(time.Minute)}
	if dir != "" {
		ex = append(ex, WithDir(dir))
	}
	r, err := s.Execute(ctx, procLaunch, ex...)
	if err != nil {
		return fmt.Errorf("podsandbox: starting a background process: %w", err)
	}
	return procExit(r, id)
}

// runProcess starts command as process id, as startProcess does, and in the same call reads its
// first output (up to followChunk bytes of each stream, waiting up to followWait seconds in the pod
// for its end). With auto, the record is the call's own: it expires 2 minutes after the command's
// end instead of waiting for Remove.
func (s *KubernetesPodSandbox) runProcess(ctx context.Context, id, command string, userEnv map[string]string, dir string, limit int, auto bool) (ProcessOutput, error) {
	env := launchEnv(id, command, limit, userEnv)
	env["PSBX_A0"], env["PSBX_A1"], env["PSBX_A2"] = id, strconv.Itoa(followChunk), strconv.Itoa(followWait)
	if auto {
		env["PSBX_AUTO"] = "1"
	}
	var out, errb bytes.Buffer
	quick := func(c *ExecConfig) { c.quick = true }
	ex := []ExecOption{WithExecEnv(env), WithTimeout(followWait*time.Second + time.Minute), WithStdout(&out), WithStderr(&errb), WithOutputLimit(1), quick}
	if dir != "" {
		ex = append(ex, WithDir(dir))
	}
	r, err := s.Execute(ctx, `set -- "$PSBX_A0" "$PSBX_A1" "$PSBX_A2"`+"\n"+procRun, ex...)
	if err != nil {
		return ProcessOutput{}, fmt.Errorf("podsandbox: starting a background process: %w", err)
	}
	r.Stdout, r.Stderr = out.String(), errb.String()
	if err := procExit(r, id); err != nil {
		return ProcessOutput{}, err
	}
	o, _, err := parsePeek(r.Stdout, Cursor{})
	return o, err
}

// launchEnv is the environment of procLaunch (and procRun): the launch's values, then the
// command's own (whose names never start with PSBX_).
func launchEnv(id, command string, limit int, userEnv map[string]string) map[string]string {
	env := map[string]string{"PSBX_ID": id, "PSBX_CMD": command, "PSBX_MAX": strconv.Itoa(limit), "PSBX_SUP": procSupervisor}
	maps.Copy(env, userEnv)
	return env
}

// Process returns a handle on the background process id, which must exist in the sandbox (an
// error matching ErrNoProcess otherwise). It is how another replica, or a restarted caller,
// re-attaches to a process it did not start.
func (s *KubernetesPodSandbox) Process(ctx context.Context, id string) (*Process, error) {
	p := &Process{sb: s, id: id}
	if _, err := p.Status(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Processes lists the sandbox's background processes (running, exited and lost) until they are
// removed, in no particular order.
func (s *KubernetesPodSandbox) Processes(ctx context.Context) ([]ProcessStatus, error) {
	r, err := s.procCall(ctx, procList, 30*time.Second)
	if err != nil {
		return nil, err
	}
	if err := procExit(r, ""); err != nil {
		return nil, err
	}
	br := bufio.NewReader(strings.NewReader(r.Stdout))
	var out []ProcessStatus
	for {
		st, err := readProcRecord(br)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
		if _, err := br.ReadByte(); err != nil { // the newline after each record
			return out, nil
		}
	}
}

// Status reads the process's state.
func (p *Process) Status(ctx context.Context) (ProcessStatus, error) {
	o, err := p.ReadOutput(ctx, Cursor{}, 0)
	return o.Status, err
}

// ReadOutput reads up to max bytes of each of stdout and stderr from at, with the status as it
// was just before. A read that returns no bytes while Status.OutputDone is true is the end.
func (p *Process) ReadOutput(ctx context.Context, at Cursor, max int) (ProcessOutput, error) {
	return p.readOutput(ctx, at, max, 0, true)
}

// readOutput is ReadOutput that first waits up to wait seconds, in the pod, for output past at or
// for the process to end: a follower's poll that costs one call per burst of output, not one per
// interval. Status.Command is filled only withCmd.
func (p *Process) readOutput(ctx context.Context, at Cursor, max, wait int, withCmd bool) (ProcessOutput, error) {
	if at.Stdout < 0 || at.Stderr < 0 || max < 0 {
		return ProcessOutput{}, fmt.Errorf("%w: cursor %+v, max %d", ErrInvalidArgument, at, max)
	}
	r, err := p.call(ctx, procPeek, time.Duration(wait)*time.Second+30*time.Second,
		strconv.FormatInt(at.Stdout, 10), strconv.FormatInt(at.Stderr, 10), strconv.Itoa(max), strconv.Itoa(wait), map[bool]string{true: "1"}[withCmd])
	if err != nil {
		return ProcessOutput{}, err
	}
	o, _, err := parsePeek(r.Stdout, at)
	return o, err
}

// parsePeek reads what procPeek prints (output read from at), and returns what follows it.
func parsePeek(out string, at Cursor) (ProcessOutput, string, error) {
	br := bufio.NewReader(strings.NewReader(out))
	st, err := readProcRecord(br)
	if err != nil {
		return ProcessOutput{}, "", err
	}
	o := ProcessOutput{Status: st, Next: at}
	for _, s := range []struct {
		key  string
		data *[]byte
		next *int64
	}{{"outdata", &o.Stdout, &o.Next.Stdout}, {"errdata", &o.Stderr, &o.Next.Stderr}} {
		if _, err := br.ReadByte(); err != nil {
			return ProcessOutput{}, "", errProcGarbled("missing " + s.key)
		}
		n, err := readProcLen(br, s.key)
		if err != nil {
			return ProcessOutput{}, "", err
		}
		*s.data = make([]byte, n)
		if _, err := io.ReadFull(br, *s.data); err != nil {
			return ProcessOutput{}, "", errProcGarbled(s.key + " cut short")
		}
		*s.next += int64(n)
	}
	rest, _ := io.ReadAll(br)
	return o, string(rest), nil
}

// Follow copies the process's output from at to stdout and stderr as it arrives (either may be
// nil to drop that stream) until the process has exited and its output is done, or ctx ends. It
// returns the last status and where it stopped, so a later Follow or ReadOutput can go on from
// there.
func (p *Process) Follow(ctx context.Context, at Cursor, stdout, stderr io.Writer) (ProcessStatus, Cursor, error) {
	return p.follow(ctx, at, true, func(o ProcessOutput) error {
		for _, w := range []struct {
			w    io.Writer
			data []byte
		}{{stdout, o.Stdout}, {stderr, o.Stderr}} {
			if w.w != nil && len(w.data) > 0 {
				if _, err := w.w.Write(w.data); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// followWait is how long one poll of a follower waits in the pod for output, and followChunk
// the most it reads of each stream.
const (
	followWait  = 10
	followChunk = 1 << 20
)

// follow hands each read with output to f until the process has ended and its output is read.
// The statuses carry the command only withCmd (it costs the pod a process per read).
func (p *Process) follow(ctx context.Context, at Cursor, withCmd bool, f func(ProcessOutput) error) (ProcessStatus, Cursor, error) {
	const chunk = followChunk
	wait := followWait
	for {
		o, err := p.readOutput(ctx, at, chunk, wait, withCmd)
		if err != nil {
			return o.Status, at, err
		}
		if len(o.Stdout)+len(o.Stderr) > 0 {
			if err := f(o); err != nil {
				return o.Status, at, err
			}
		}
		at = o.Next
		switch {
		case len(o.Stdout)+len(o.Stderr) == chunk*2 || len(o.Stdout) == chunk || len(o.Stderr) == chunk:
			wait = 0 // more is waiting
		case o.Status.State != ProcessRunning && len(o.Stdout)+len(o.Stderr) == 0:
			// Ended (or lost) and drained. The supervisor records the exit only after the output
			// ended, or after a child the command left behind held it 2 s more; what such a child
			// writes later is there for ReadOutput, but Follow's job ends with the command.
			return o.Status, at, nil
		case o.Status.State != ProcessRunning:
			wait = 0 // read the rest
		default:
			wait = followWait
		}
	}
}

// Wait waits for the process to exit (or its supervisor to be lost) and returns its status. It
// returns early with ctx's error; the process keeps running.
func (p *Process) Wait(ctx context.Context) (ProcessStatus, error) {
	for {
		r, err := p.call(ctx, procWait, 40*time.Second, "20")
		if err != nil {
			return ProcessStatus{}, err
		}
		st, err := readProcRecord(bufio.NewReader(strings.NewReader(r.Stdout)))
		if err != nil || st.State != ProcessRunning {
			return st, err
		}
		if err := ctx.Err(); err != nil {
			return st, err
		}
	}
}

// Signal sends sig to the process's whole process group. It returns an error matching
// os.ErrProcessDone when the process has already exited.
func (p *Process) Signal(ctx context.Context, sig syscall.Signal) error {
	if sig < 0 || sig > 64 {
		return fmt.Errorf("%w: signal %d", ErrInvalidArgument, int(sig))
	}
	_, err := p.call(ctx, procSignal, 30*time.Second, strconv.Itoa(int(sig)))
	return err
}

// Kill sends SIGKILL to the process's whole process group (os.ErrProcessDone when it has already
// exited).
func (p *Process) Kill(ctx context.Context) error { return p.Signal(ctx, syscall.SIGKILL) }

// Remove ends the process if it still runs (SIGKILL to its group and to its supervisor) and
// deletes its output and state. The id is then unknown (ErrNoProcess).
func (p *Process) Remove(ctx context.Context) error {
	_, err := p.call(ctx, procRemove, 30*time.Second)
	return err
}

// call runs one of the process scripts with the id and args as arguments.
func (p *Process) call(ctx context.Context, script string, timeout time.Duration, args ...string) (*ExecuteResponse, error) {
	if !processID.MatchString(p.id) {
		return nil, fmt.Errorf("%w: process id %q", ErrNoProcess, p.id)
	}
	r, err := p.sb.procCall(ctx, script, timeout, append([]string{p.id}, args...)...)
	if err != nil {
		return nil, err
	}
	return r, procExit(r, p.id)
}

// procCall runs script with args as $1.. (set from environment values: Execute takes no argv).
func (s *KubernetesPodSandbox) procCall(ctx context.Context, script string, timeout time.Duration, args ...string) (*ExecuteResponse, error) {
	env := make(map[string]string, len(args))
	var set strings.Builder
	set.WriteString("set --")
	for i, a := range args {
		k := "PSBX_A" + strconv.Itoa(i)
		env[k] = a
		set.WriteString(` "$` + k + `"`)
	}
	// The output of a peek can hold binary bytes: collect stdout as bytes, not through Output.
	var out, errb bytes.Buffer
	quick := func(c *ExecConfig) { c.quick = true } // the re-attach loop retries and checks the pod itself
	r, err := s.Execute(ctx, set.String()+"\n"+script, WithExecEnv(env), WithTimeout(timeout), WithStdout(&out), WithStderr(&errb), WithOutputLimit(1), quick)
	if err != nil {
		return nil, fmt.Errorf("podsandbox: background process: %w", err)
	}
	r.Stdout, r.Stderr = out.String(), errb.String()
	return r, nil
}

func procExit(r *ExecuteResponse, id string) error {
	msg := strings.TrimSpace(r.Stderr)
	switch r.ExitCode {
	case 0:
		return nil
	case procNoSuch:
		return fmt.Errorf("%w: %s", ErrNoProcess, id)
	case procDone:
		return fmt.Errorf("podsandbox: background process %s: %w", id, os.ErrProcessDone)
	case procNoStdin:
		return fmt.Errorf("%w: background process %s: %s", ErrInvalidArgument, id, msg)
	case procNoTool:
		return fmt.Errorf("%w: %s", ErrUnsupportedImage, msg)
	case procIDTaken:
		return fmt.Errorf("%w: %w: %s", ErrInvalidArgument, errProcIDTaken, id)
	}
	return fmt.Errorf("podsandbox: background process script exited %d: %s", r.ExitCode, msg)
}

type procGarbledError string

func (e procGarbledError) Error() string {
	return "podsandbox: background process record is garbled (" + string(e) + ")"
}
func (e procGarbledError) Is(target error) bool { return target == ErrOutputIncomplete }

func errProcGarbled(what string) error { return procGarbledError(what) }

// readProcLen reads "key=N\n".
func readProcLen(br *bufio.Reader, key string) (int, error) {
	line, err := br.ReadString('\n')
	k, v, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
	n, perr := strconv.Atoi(v)
	if err != nil || !ok || k != key || perr != nil || n < 0 {
		return 0, errProcGarbled(fmt.Sprintf("want %s, got %q", key, line))
	}
	return n, nil
}

// readProcRecord parses one record printed by rec; io.EOF when there is none.
func readProcRecord(br *bufio.Reader) (ProcessStatus, error) {
	var st ProcessStatus
	var alive, exited, outEOF, errEOF bool
	first := true
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF && first && line == "" {
			return st, io.EOF
		}
		if err != nil {
			return st, errProcGarbled("record cut short")
		}
		first = false
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		num := func() int64 { n, _ := strconv.ParseInt(v, 10, 64); return n }
		switch k {
		case "id":
			st.ID = v
		case "alive":
			alive = v == "1"
		case "pgid":
			st.PGID = int(num())
		case "started":
			st.StartedAt = time.Unix(num(), 0)
		case "exit": // "CODE ENDTIME"
			code, end, _ := strings.Cut(v, " ")
			c, err1 := strconv.Atoi(code)
			e, err2 := strconv.ParseInt(end, 10, 64)
			if err1 != nil || err2 != nil {
				return st, errProcGarbled(fmt.Sprintf("exit %q", v))
			}
			exited, st.ExitCode, st.EndedAt = true, c, time.Unix(e, 0)
		case "timedout":
			st.TimedOut = true
		case "outcut":
			st.StdoutTruncated = true
		case "errcut":
			st.StderrTruncated = true
		case "outeof":
			outEOF = true
		case "erreof":
			errEOF = true
		case "outsize":
			st.StdoutBytes = num()
		case "errsize":
			st.StderrBytes = num()
		case "cmd":
			n := int(num())
			b := make([]byte, n)
			if _, err := io.ReadFull(br, b); err != nil {
				return st, errProcGarbled("command cut short")
			}
			st.Command = string(b)
			st.OutputDone = outEOF && errEOF
			switch {
			case exited:
				st.State = ProcessExited
			case alive:
				st.State = ProcessRunning
			default:
				st.State = ProcessLost
			}
			return st, nil
		default:
			return st, errProcGarbled(fmt.Sprintf("unexpected %q", line))
		}
	}
}

// reattachPatience is how long a call made WithReattach keeps trying while every call to the pod
// fails with a transport error (an API server restart takes seconds to a minute).
const reattachPatience = time.Minute

// executeReattach is Execute for WithReattach and WithRequestID: the command runs as a background
// process, and the call follows it by cursor, so a lost connection costs a retry of one read.
func (s *KubernetesPodSandbox) executeReattach(ctx context.Context, command string, c ExecConfig) (*ExecuteResponse, error) {
	if c.Stdin != nil {
		return nil, fmt.Errorf("%w: WithStdin cannot be combined with WithReattach or WithRequestID: write the input to a file and redirect it", ErrInvalidArgument)
	}
	id, own := c.RequestID, c.RequestID == ""
	if own {
		id = newProcessID()
	} else if !processID.MatchString(id) {
		return nil, fmt.Errorf("%w: request id %q: want [a-z0-9][a-z0-9-]*, at most 63 bytes", ErrInvalidArgument, id)
	}
	p := &Process{sb: s, id: id}
	fctx, cancel := context.WithTimeoutCause(ctx, c.Timeout, errTimedOut)
	defer cancel()
	// end kills the process, and removes it when the id is ours, even after the caller gave up.
	end := func() {
		kctx, kcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer kcancel()
		if own {
			_ = p.Remove(kctx)
		} else {
			_ = p.Kill(kctx)
		}
	}

	capt := newCapture(c.OutputLimit, nil, nil)
	collect := func(o ProcessOutput) error {
		for _, w := range []struct {
			stream int
			user   io.Writer
			data   []byte
		}{{1, c.Stdout, o.Stdout}, {2, c.Stderr, o.Stderr}} {
			if len(w.data) > 0 {
				_, _ = capt.stream(w.stream).Write(w.data)
				if w.user != nil {
					if _, err := w.user.Write(w.data); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	storeLimit := max(c.OutputLimit+1, DefaultProcessOutputLimit)
	at := Cursor{}

	// HTTP mode and the agent: the in-pod server runs the command apart from the request and
	// records it (the agent lives on, when its stream breaks, until such commands end); the call
	// streams as a plain Execute does, and only a broken stream pays for a re-attach. An agent
	// that cannot run sends the call to the supervisor below (errNoDurable).
	started := false
	if s.cfg.mode == ModeHTTP || s.cfg.agent != nil {
		fc := c
		fc.durable = durableExec{id: id, storeLimit: storeLimit, keep: !own}
		fc.Stdout = writerFunc(func(b []byte) (int, error) {
			at.Stdout += int64(len(b))
			return len(b), collect(ProcessOutput{Stdout: b})
		})
		fc.Stderr = writerFunc(func(b []byte) (int, error) {
			at.Stderr += int64(len(b))
			return len(b), collect(ProcessOutput{Stderr: b})
		})
		tr, err := s.transportFor()
		if err != nil {
			return nil, err
		}
		r, err := tr.exec(ctx, command, fc)
		switch {
		case err == nil:
			return r, nil
		case ctx.Err() != nil:
			end() // cancelled: like Execute, do not leave the command running
			return nil, ctx.Err()
		case errors.Is(err, errProcIDTaken):
			// An earlier call with this request id: read its result from the start.
			at = Cursor{}
			capt = newCapture(c.OutputLimit, nil, nil)
		case errors.Is(err, ErrConnectionLost):
			// The stream had begun, so the server had made the record: re-attach from where the
			// output stopped.
			started = true
		}
		// Any other failure may have come before the server saw the request: the start below
		// finds out (a taken id means it did).
	}

	// Start, retrying while the connection fails: the id makes a retry safe, since a start that
	// went through before its answer was lost leaves the id taken.
	result := func(st ProcessStatus, timedOut bool) *ExecuteResponse {
		res := capt.response(st.ExitCode, timedOut || st.TimedOut)
		if res.TimedOut {
			res.ExitCode = TimeoutExitCode
		}
		// The pod dropped output past its store limit: the tail shown is the stored one's.
		res.StdoutTruncated = res.StdoutTruncated || st.StdoutTruncated
		res.StderrTruncated = res.StderrTruncated || st.StderrTruncated
		res.Truncated = res.Truncated || st.StdoutTruncated || st.StderrTruncated
		return res
	}

	// The first call starts the command and reads its first output, so that a short command
	// costs one call of the transport. A call's own record expires by itself after the end.
	var failing time.Time
	for !started {
		o, err := s.runProcess(fctx, id, command, c.Env, c.Dir, storeLimit, own)
		if errors.Is(err, errProcIDTaken) {
			var st ProcessStatus
			if st, err = p.Status(fctx); err == nil && st.Command != command {
				return nil, fmt.Errorf("%w: request id %s was used for another command", ErrInvalidArgument, id)
			}
		} else if err == nil {
			if err := collect(o); err != nil {
				end()
				return nil, err
			}
			at = o.Next
			if st := o.Status; st.State == ProcessExited && st.OutputDone && len(o.Stdout) < followChunk && len(o.Stderr) < followChunk {
				return result(st, false), nil // all of it
			}
		}
		if err == nil {
			break
		}
		if err := reattachRetry(fctx, err, &failing); err != nil {
			if ctx.Err() == nil && errors.Is(context.Cause(fctx), errTimedOut) {
				// The timeout fired before the start was confirmed: as for any command its
				// timeout ends, a result (it may have started: end it).
				end()
				return &ExecuteResponse{ExitCode: TimeoutExitCode, TimedOut: true}, nil
			}
			return nil, err
		}
	}

	timedOut := false
	failing = time.Time{}
	for {
		st, next, err := p.follow(fctx, at, false, collect)
		if next != at {
			failing = time.Time{} // progress: the pod answers
		}
		at = next
		if err == nil {
			if st.State == ProcessLost {
				return nil, fmt.Errorf("%w: the supervisor of %s died without recording the command's exit code (the command had started)", ErrOutputIncomplete, id)
			}
			res := result(st, timedOut)
			return res, nil // an own record expires by itself
		}
		if !timedOut && ctx.Err() == nil && errors.Is(context.Cause(fctx), errTimedOut) {
			// The timeout: kill the group, then read what is left.
			timedOut = true
			kctx, kcancel := context.WithTimeout(ctx, 30*time.Second)
			_ = p.Kill(kctx)
			kcancel()
			rest, restCancel := context.WithTimeout(ctx, 30*time.Second)
			defer restCancel() // once: timedOut is set
			fctx = rest
			continue
		}
		if rerr := reattachRetry(fctx, err, &failing); rerr != nil {
			if ctx.Err() != nil {
				end() // cancelled: like Execute, do not leave the command running
			}
			if errors.Is(rerr, ErrSandboxGone) {
				return nil, fmt.Errorf("%w (the command had started as %s)", rerr, id)
			}
			return nil, rerr
		}
	}
}

// reattachRetry decides whether a reattaching call tries again after err: it waits a little and
// returns nil for a transport error, for up to reattachPatience of failures in a row, and returns
// the error to give up with otherwise.
func reattachRetry(ctx context.Context, err error, failing *time.Time) error {
	switch {
	case ctx.Err() != nil:
		if errors.Is(context.Cause(ctx), errTimedOut) {
			return fmt.Errorf("podsandbox: timed out while the sandbox did not answer: %w", err)
		}
		return ctx.Err()
	case errors.Is(err, ErrSandboxGone), errors.Is(err, ErrInvalidArgument), errors.Is(err, ErrNoProcess),
		errors.Is(err, ErrStopped), errors.Is(err, ErrNotStarted), errors.Is(err, ErrUnsupportedImage),
		errors.Is(err, ErrUnauthorized):
		return err
	}
	if failing.IsZero() {
		*failing = time.Now()
	} else if time.Since(*failing) > reattachPatience {
		return fmt.Errorf("podsandbox: the sandbox did not answer for %s: %w", reattachPatience, err)
	}
	select {
	case <-ctx.Done():
		return reattachRetry(ctx, err, failing)
	case <-time.After(500 * time.Millisecond):
		return nil
	}
}

// writerFunc is an io.Writer from a function.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
