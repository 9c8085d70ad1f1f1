package podsandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// An exec channel is one long-lived pods/exec running channelDriver: a /bin/sh loop that reads
// requests on its stdin and runs each under channelWrapper, in a process of its own, with the
// request's data as argv and stdin. It costs a fork or three per call where a pods/exec of its own
// costs an API-server upgrade, a kubelet stream and a runtime exec: about a hundred times less.
//
// The protocol, every line ending in "\n":
//
//	p MARKER                  ping: the driver answers MARKER on stdout and MARKER+4 flags on stderr
//	r MARKER                  run: the header of a request, followed by
//	N                         the number of arguments, then each argument as
//	- / text                  "-" and the argument on one line (short and without newline), or
//	LEN / LEN raw bytes       its byte count on a line and that many bytes
//	- | i (LEN / bytes)... 0  no stdin, or stdin in chunks, ended by a chunk of 0
//
// A request's end is MARKER on stdout, then MARKER, the status (3 digits) and a taint flag on
// stderr. The driver runs a request only once all of it has arrived: a channel that breaks mid-
// request leaves a driver that exits without running it. Data never becomes script text: the
// arguments reach channelWrapper as "$@", stdin as a file it reads.
//
// The wrapper runs the command in a process of its own, so `exit`, `exec`, `cd`, traps and
// exported variables end with it. The command's stdin is /dev/null or the request's stdin, never
// the channel. After it exits, the driver looks for any process still holding the channel's stdout
// or stderr (a background child): such a channel is tainted, since that child's later output would
// land in another command's result, and the client closes it instead of reusing it.
const channelDriver = `exec 3>&2 2>/dev/null
W=$1 h=0 t=0 k=0 T=
command -v dd >/dev/null 2>&1 && h=1
command -v timeout >/dev/null 2>&1 && t=1
T=$(mktemp -d /tmp/.psbx-ch.XXXXXX 2>/dev/null) && k=1
trap '[ -n "$T" ] && rm -rf "$T"' EXIT
while read -r op mk; do
  case $op in
  p) printf '%s' "$mk"; printf '%s%s%s%s0' "$mk" $h $t $k >&3; continue;;
  r) ;;
  *) exit 2;;
  esac
  read -r n || exit 2
  set --
  while [ "$n" -gt 0 ]; do
    read -r l || exit 2
    if [ "$l" = - ]; then IFS= read -r a || exit 2
    else a=$(dd bs="$l" count=1 iflag=fullblock 2>/dev/null; echo x); a=${a%x}; fi
    set -- "$@" "$a"; n=$((n-1))
  done
  read -r l || exit 2
  if [ "$l" = - ]; then
    /bin/sh -c "$W" psbx "$@" </dev/null 2>&3 3>&-
    s=$?
  else
    while :; do
      read -r l || exit 2
      [ "$l" = 0 ] && break
      dd bs="$l" count=1 iflag=fullblock 2>/dev/null || exit 2
    done > "$T/in"
    /bin/sh -c "$W" psbx "$@" <"$T/in" 2>&3 3>&-
    s=$?
    : > "$T/in"
  fi
  x=0
  for f in /proc/[0-9]*/fd/[0-9]*; do
    case $f in /proc/$$/*) continue;; esac
    if [ "$f" -ef /proc/$$/fd/1 ] || [ "$f" -ef /proc/$$/fd/3 ]; then x=1; break; fi
  done
  printf '%s' "$mk"; printf '%s%03d%s' "$mk" "$s" $x >&3
done`

// channelWrapper runs one request: the arguments of runWrapper ($1 dir, $2 marker, $3 backstop
// timeout, $4 number of env assignments, $5 the script, then the assignments and the script's
// own arguments). The marker stays in its command line, where the stop script finds it: timeout
// is not its last command, which a shell would exec in its place. The shell's own report of a
// killed child ("Killed") goes to /dev/null, not into the command's stderr. The driver, not the
// wrapper, reports the end and the status.
const channelWrapper = `d=$1 to=$3 ne=$4 c=$5; shift 5
while [ "$ne" -gt 0 ]; do export "$1"; shift; ne=$((ne-1)); done
cd "$d" || exit 1
exec 3>&2 2>/dev/null
timeout -s KILL "$to" /bin/sh -c "$c" sh "$@" 2>&3 3>&-
exit $?`

// Limits and periods of the channels.
const (
	lineArgMax         = 512     // an argument this short, without a newline, travels as a line
	stdinChunk         = 1 << 20 // stdin travels in chunks of this size
	channelOpenTimeout = 30 * time.Second
	keepaliveEvery     = 30 * time.Second // idle channels are pinged this often: streams have idle timeouts
	idleChannelTTL     = 5 * time.Minute  // channels idle this long are closed, except the last one
	killGrace          = 2 * time.Second  // how long a killed command's end may take, per kill
	channelCloseGrace  = 5 * time.Second  // how long a closed channel's stream may take to end
)

// errNoChannel says that a call cannot go through a channel and takes a pods/exec of its own.
var errNoChannel = errors.New("no exec channel for this call")

// channelPool owns a sandbox's exec channels: at most size in use at once, the idle ones kept for
// reuse and pinged, every goroutine waited for by close.
type channelPool struct {
	t      *apiTransport
	slots  chan struct{} // one token per channel in use or being opened
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	idle   []*execChannel // most recently used last
	all    map[*execChannel]bool
	closed bool

	noChannel atomic.Pointer[string] // why this image cannot host a channel
	noStdin   atomic.Bool            // no private directory in /tmp: calls with stdin take a pods/exec
}

func newChannelPool(t *apiTransport, size int) *channelPool {
	ctx, cancel := context.WithCancel(context.Background())
	p := &channelPool{t: t, slots: make(chan struct{}, size), ctx: ctx, cancel: cancel}
	p.wg.Add(1)
	go p.keepalive()
	return p
}

// close closes every channel and waits for their goroutines. Calls in flight end with an error.
func (p *channelPool) close() {
	p.mu.Lock()
	p.closed = true
	p.idle = nil
	all := p.all
	p.all = nil
	p.mu.Unlock()
	p.cancel()
	for ch := range all {
		ch.close()
	}
	p.wg.Wait()
}

// acquire returns a channel for one call: an idle one, or a new one while fewer than size are in
// use; else it waits for one to come free.
func (p *channelPool) acquire(ctx context.Context) (*execChannel, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.ctx.Done():
		return nil, ErrStopped
	}
	if ch := p.takeIdle(); ch != nil {
		return ch, nil
	}
	octx, cancel := context.WithTimeout(ctx, channelOpenTimeout)
	defer cancel()
	ch, err := p.open(octx)
	if err != nil {
		<-p.slots
		return nil, err
	}
	return ch, nil
}

// tryAcquire returns an idle channel without waiting, or nil.
func (p *channelPool) tryAcquire() *execChannel {
	select {
	case p.slots <- struct{}{}:
	default:
		return nil
	}
	if ch := p.takeIdle(); ch != nil {
		return ch
	}
	<-p.slots
	return nil
}

func (p *channelPool) takeIdle() *execChannel {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.idle) > 0 {
		ch := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if ch.usable() {
			return ch
		}
		ch.close()
	}
	return nil
}

// release gives a channel back after a call; a broken or tainted one is closed instead.
func (p *channelPool) release(ch *execChannel) {
	p.mu.Lock()
	if ch.usable() && !p.closed {
		ch.lastUsed = time.Now()
		p.idle = append(p.idle, ch)
		ch = nil
	}
	p.mu.Unlock()
	if ch != nil {
		ch.close()
	}
	<-p.slots
}

// keepalive pings idle channels, so that no stream idle timeout between here and the container
// closes them, and closes the channels beyond the last one that have been idle for long.
func (p *channelPool) keepalive() {
	defer p.wg.Done()
	tick := time.NewTicker(keepaliveEvery)
	defer tick.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-tick.C:
		}
		p.mu.Lock()
		var stale []*execChannel
		for len(p.idle) > 1 && time.Since(p.idle[0].lastUsed) > idleChannelTTL {
			stale = append(stale, p.idle[0])
			p.idle = p.idle[1:]
		}
		n := len(p.idle)
		p.mu.Unlock()
		for _, ch := range stale {
			ch.close()
		}
		for range n {
			ch := p.tryAcquire()
			if ch == nil {
				break
			}
			if time.Since(ch.lastUsed) >= keepaliveEvery {
				ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
				if _, err := ch.ping(ctx); err != nil {
					p.t.s.log.Debug("exec channel failed its keepalive; closing it", "err", err)
					ch.close()
				}
				cancel()
			}
			p.release(ch)
		}
	}
}

// open starts a channel and checks that the image can host one.
func (p *channelPool) open(ctx context.Context) (*execChannel, error) {
	if why := p.noChannel.Load(); why != nil {
		return nil, fmt.Errorf("%w: %s", errNoChannel, *why)
	}
	// The stream outlives the pool's context: close ends it from the far side first.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	pr, pw := io.Pipe()
	ch := &execChannel{p: p, in: pw, cancel: cancel, dead: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		cancel()
		return nil, ErrStopped
	}
	if p.all == nil {
		p.all = map[*execChannel]bool{}
	}
	p.all[ch] = true
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		code, err := p.t.stream(sctx, []string{"/bin/sh", "-c", channelDriver, "psbx", channelWrapper}, pr, &ch.out, &ch.err)
		if err == nil {
			err = fmt.Errorf("the channel's shell exited with code %d", code)
		}
		ch.deadErr = err
		pr.CloseWithError(err)
		close(ch.dead)
		p.mu.Lock()
		delete(p.all, ch)
		p.mu.Unlock()
	}()
	flags, err := ch.ping(ctx)
	if err != nil {
		ch.close()
		return nil, err
	}
	switch {
	case flags[0] != '1':
		why := "the image has no dd"
		p.noChannel.Store(&why)
	case flags[1] != '1':
		why := "the image has no timeout"
		p.noChannel.Store(&why)
	}
	if why := p.noChannel.Load(); why != nil {
		p.t.s.log.Info("API mode runs every call in a pods/exec of its own", "reason", *why)
		ch.close()
		return nil, fmt.Errorf("%w: %s", errNoChannel, *why)
	}
	p.noStdin.Store(flags[2] != '1')
	p.t.s.log.Debug("exec channel open", "pod", p.t.s.podName)
	return ch, nil
}

// execChannel is one long-lived pods/exec running channelDriver; one call at a time uses it.
type execChannel struct {
	p        *channelPool
	in       *io.PipeWriter
	out, err channelSink
	cancel   context.CancelFunc
	dead     chan struct{} // closed when the stream has ended
	deadErr  error         // why; written before dead is closed
	tainted  atomic.Bool   // a process outside a call writes to it, or a call was abandoned
	closing  atomic.Bool   // close has run
	lastUsed time.Time     // guarded by the pool's mu while idle
}

func (ch *execChannel) usable() bool {
	select {
	case <-ch.dead:
		return false
	default:
		return !ch.tainted.Load()
	}
}

// close ends the channel from the far side: its stdin closes, the driver sees EOF and exits, and
// the stream ends as any finished pods/exec does (a stream cancelled from this side leaves
// client-go goroutines behind until the connection notices). A stream still open after
// channelCloseGrace (a background child holding it) is cancelled. It does not wait; the pool's
// close does.
func (ch *execChannel) close() {
	if ch.closing.Swap(true) {
		return
	}
	ch.tainted.Store(true)
	ch.in.Close()
	ch.p.wg.Add(1)
	go func() {
		defer ch.p.wg.Done()
		select {
		case <-ch.dead:
		case <-time.After(channelCloseGrace):
		}
		ch.cancel()
	}()
}

// channelSink is the channel's stdout or stderr: it hands bytes to the current call's writer.
type channelSink struct {
	mu  sync.Mutex
	cur *markerWriter
	ch  *execChannel
	err error // the first error of the call's writer
}

func (s *channelSink) set(w *markerWriter, ch *execChannel) {
	s.mu.Lock()
	s.cur, s.ch, s.err = w, ch, nil
	s.mu.Unlock()
}

// Write never fails: an error of the caller's writer is kept for the call, since failing here
// would end the channel.
func (s *channelSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	w, ch := s.cur, s.ch
	s.mu.Unlock()
	if w == nil {
		if ch != nil {
			ch.tainted.Store(true) // output between calls: someone else writes to this channel
		}
		return len(p), nil
	}
	if _, err := w.Write(p); err != nil {
		s.mu.Lock()
		if s.err == nil {
			s.err = err
		}
		s.mu.Unlock()
	}
	return len(p), nil
}

// ping checks the channel and returns the driver's four flags (dd, timeout, private directory, 0).
func (ch *execChannel) ping(ctx context.Context) (string, error) {
	mk := newMarker()
	res, err := ch.call(ctx, mk, []byte("p "+mk+"\n"), nil, io.Discard, io.Discard, 0)
	if err != nil {
		return "", err
	}
	return res.flags, nil
}

// channelResult is what the driver reported at a call's end.
type channelResult struct {
	exitCode int
	tainted  bool
	flags    string // ping: the 4 flag bytes
}

// request encodes a run request for the wrapper arguments args, saying whether stdin follows.
func request(mk string, args []string, stdin bool) []byte {
	var b bytes.Buffer
	b.WriteString("r " + mk + "\n" + strconv.Itoa(len(args)) + "\n")
	for _, a := range args {
		if len(a) <= lineArgMax && !bytes.ContainsAny([]byte(a), "\n") {
			b.WriteString("-\n" + a + "\n")
			continue
		}
		b.WriteString(strconv.Itoa(len(a)) + "\n" + a)
	}
	if stdin {
		b.WriteString("i\n")
	} else {
		b.WriteString("-\n")
	}
	return b.Bytes()
}

// sizedReader is stdin whose length is known: bytes.Reader, strings.Reader, bytes.Buffer.
type sizedReader interface {
	io.Reader
	Len() int
}

// send writes a request and its stdin to the channel.
func (ch *execChannel) send(req []byte, stdin sizedReader) error {
	if _, err := ch.in.Write(req); err != nil || stdin == nil {
		return err
	}
	buf := make([]byte, min(stdin.Len(), stdinChunk))
	for stdin.Len() > 0 {
		n, err := io.ReadFull(stdin, buf[:min(stdin.Len(), len(buf))])
		if err != nil {
			return err
		}
		if _, err := ch.in.Write(append([]byte(strconv.Itoa(n)+"\n"), buf[:n]...)); err != nil {
			return err
		}
	}
	_, err := ch.in.Write([]byte("0\n"))
	return err
}

// errCallEnded reports a call that ended by its deadline or ctx; the caller knows which.
var errCallEnded = errors.New("call ended before its command")

// call sends one request and waits for its end. With a deadline (timeout > 0) or ctx ending first,
// it returns errCallEnded or ctx.Err() after stopping the command (kill); the channel is then
// closed unless the driver reported the end in time.
func (ch *execChannel) call(ctx context.Context, mk string, req []byte, stdin sizedReader,
	stdout, stderr io.Writer, timeout time.Duration, kill ...func()) (channelResult, error) {
	out := &markerWriter{w: stdout, marker: []byte(mk)}
	errw := &markerWriter{w: stderr, marker: []byte(mk), status: 4}
	ended := make(chan struct{})
	var once sync.Once
	onEnd := func() {
		if out.seen() && errw.seen() {
			once.Do(func() { close(ended) })
		}
	}
	out.onEnd, errw.onEnd = onEnd, onEnd
	ch.out.set(out, ch)
	ch.err.set(errw, ch)
	defer func() {
		ch.out.set(nil, ch)
		ch.err.set(nil, ch)
	}()

	wrote := make(chan error, 1)
	go func() { wrote <- ch.send(req, stdin) }()
	var deadline <-chan time.Time
	if timeout > 0 {
		tm := time.NewTimer(timeout)
		defer tm.Stop()
		deadline = tm.C
	}
	var res channelResult
	var stopped error
	select {
	case <-ended:
	case <-ch.dead:
	case <-deadline:
		stopped = errCallEnded
	case <-ctx.Done():
		stopped = ctx.Err()
	}
	if stopped != nil {
		// Stop the command, then give the driver a moment to report its end; a channel whose
		// call did not end cleanly is not reused.
		out.silence()
		errw.silence()
		for _, k := range kill {
			k()
			select {
			case <-ended:
			case <-ch.dead:
			case <-time.After(killGrace):
				continue
			}
			break
		}
		select {
		case <-ended:
		default:
			ch.close()
		}
	}
	if err := <-wrote; err != nil && stopped == nil && !isEnded(ended) {
		select {
		case <-ch.dead:
		default:
			ch.close()
		}
	}
	if stopped != nil {
		return res, stopped
	}
	if !isEnded(ended) {
		if len(kill) > 0 {
			kill[0]() // the command's end was not seen: stop it if it still runs
		}
		return res, connectionLost(ch.p.t.s.podName, "the exec channel broke", ch.deadErr)
	}
	st := string(errw.statusBytes)
	res.flags = st
	res.exitCode, _ = strconv.Atoi(st[:3])
	res.tainted = st[3] == '1'
	if res.tainted {
		ch.tainted.Store(true)
	}
	for _, s := range []*channelSink{&ch.out, &ch.err} {
		s.mu.Lock()
		err := s.err
		s.mu.Unlock()
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

func isEnded(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// run is apiTransport.run on a channel. It returns errNoChannel when the call cannot take one: the
// image cannot host a channel, or stdin has no known length (it streams while the command runs,
// which a pods/exec of its own does) or has no private directory to wait in.
func (p *channelPool) run(ctx context.Context, dir, script string, env map[string]string, args []string,
	stdin io.Reader, stdout, stderr io.Writer, timeout time.Duration) (runResult, error) {
	var sized sizedReader
	if stdin != nil {
		r, ok := stdin.(sizedReader)
		if !ok || p.noStdin.Load() {
			return runResult{}, errNoChannel
		}
		sized = r
	}
	ch, err := p.acquire(ctx)
	if err != nil {
		return runResult{}, err
	}
	defer p.release(ch)
	if sized != nil && p.noStdin.Load() { // learnt when this channel opened
		return runResult{}, errNoChannel
	}
	mk := newMarker()
	kill := func() { p.t.kill(ctx, mk) }
	res, err := ch.call(ctx, mk, request(mk, runArgs(dir, mk, script, env, args, timeout), sized != nil), sized, stdout, stderr, timeout, kill, kill)
	switch {
	case errors.Is(err, errCallEnded):
		return runResult{timedOut: true, exitCode: TimeoutExitCode}, nil
	case err != nil:
		return runResult{}, err
	}
	return runResult{exitCode: res.exitCode}, nil
}
