package podsandbox

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"

	"github.com/podsandbox/podsandbox/internal/fileops"
	"github.com/podsandbox/podsandbox/internal/wire"
)

// Agent is the podsandbox in-pod server (cmd/sandbox-server, a static Linux binary) for an
// API-mode sandbox to copy into its pod and talk to over one long-lived pods/exec stream, speaking
// HTTP/2 through the process's stdin and stdout. Commands and file operations then cost an HTTP/2
// request on an open stream instead of a pods/exec each, and behave exactly as in HTTP mode.
// Make one with NewAgent and share it: sandboxes keep a reference, not a copy.
type Agent struct {
	bin     []byte
	sum     string // hex sha256 of bin: names its directory in the pod
	machine string // uname -m of the machines it runs on
}

// NewAgent checks that bin is a Linux ELF executable for a known architecture (amd64 or arm64)
// and returns it as an Agent. Build it with
//
//	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -ldflags=-s -o psbx-agent github.com/podsandbox/podsandbox/cmd/sandbox-server
func NewAgent(bin []byte) (*Agent, error) {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return nil, fmt.Errorf("%w: the agent is not an ELF executable: %v (build cmd/sandbox-server with GOOS=linux)", ErrInvalidArgument, err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return nil, fmt.Errorf("%w: the agent is an ELF %s, not an executable", ErrInvalidArgument, f.Type)
	}
	var machine string
	switch f.Machine {
	case elf.EM_X86_64:
		machine = "x86_64"
	case elf.EM_AARCH64:
		machine = "aarch64"
	default:
		return nil, fmt.Errorf("%w: the agent is built for %s: build it for amd64 or arm64", ErrInvalidArgument, f.Machine)
	}
	sum := sha256.Sum256(bin)
	return &Agent{bin: bin, sum: hex.EncodeToString(sum[:16]), machine: machine}, nil
}

// Machine is the `uname -m` of the nodes the agent runs on (x86_64 or aarch64).
func (a *Agent) Machine() string { return a.machine }

// How a sandbox's commands reach its container; see KubernetesPodSandbox.Via.
const (
	ViaServer  = "server"  // ModeHTTP: the image's own in-pod server
	ViaAgent   = "agent"   // ModeAPI: the injected agent over one long-lived pods/exec
	ViaChannel = "channel" // ModeAPI: a /bin/sh exec channel (WithExecChannels)
	ViaExec    = "exec"    // ModeAPI: a pods/exec per call
)

// errNoAgent: the agent cannot run in this pod; calls take the shell paths instead.
var errNoAgent = errors.New("no agent")

// agentScript is the argv[2] of the agent's pods/exec: $1 the binary's digest (it names the
// directory, so each channel after the first finds the binary in place), $2 its size, $3 the
// machine it is for, then the agent's own flags. It answers one line on stdout: "have", "need"
// (the next $2 bytes of stdin are the binary) or "no REASON". Then it execs the agent, whose
// stdin and stdout carry HTTP/2 from there on.
const agentScript = `sum=$1 size=$2 mach=$3; shift 3
u=$(umask); umask 077
m=$(uname -m 2>/dev/null)
[ "$m" = "$mach" ] || { echo "no the node is ${m:-of unknown machine}, the agent is for $mach"; exit 0; }
d=/tmp/.psbx-agent-$sum a=$d/agent
if [ ! -x "$a" ]; then
	mkdir -p "$d" 2>/dev/null && t=$(mktemp "$d/up.XXXXXX" 2>/dev/null) || { echo "no /tmp is not writable"; exit 0; }
	command -v dd >/dev/null 2>&1 || { rm -f "$t"; echo "no the image has no dd"; exit 0; }
	echo need
	dd of="$t" bs="$size" count=1 iflag=fullblock 2>/dev/null && [ "$(wc -c <"$t")" -eq "$size" ] && chmod 700 "$t" && mv -f "$t" "$a" || { rm -f "$t"; exit 3; }
else
	echo have
fi
umask "$u"
exec "$a" -stdio -init=off "$@"`

// agentLink owns the sandbox's agent stream: opened once (at Start, or at the first call), shared
// by every call (HTTP/2 multiplexes them), replaced after it breaks.
type agentLink struct {
	t     *apiTransport
	agent *Agent

	mu      sync.Mutex
	cur     *agentConn
	opening chan struct{} // non-nil while an open is in flight; closed when it ends
	noAgent error         // set once the agent proved unable to run here
	closed  bool
	stop    chan struct{}  // closed by close: retiring connections stop waiting
	wg      sync.WaitGroup // stream goroutines and their closers
}

// agentConn is one running agent: a pods/exec stream with an HTTP/2 client connection over it.
type agentConn struct {
	ht      *httpTransport
	cc      *http2.ClientConn
	in      *wire.Pipe
	cancel  context.CancelFunc
	dead    chan struct{} // closed when the stream has ended
	deadErr error         // why; written before dead is closed
	exited  bool          // the script or the agent exited (not a broken stream); before dead
	stderr  *boundedBuffer
}

// usable: the stream runs and the HTTP/2 connection is neither closed nor going away. (Not
// CanTakeNewRequest, which is also false while the connection carries its stream limit of calls:
// those calls wait for a free stream.)
func (c *agentConn) usable() bool {
	st := c.cc.State()
	return !isEnded(c.dead) && !st.Closed && !st.Closing
}

// retire waits until the calls in flight on c have ended (or stop is closed).
func (c *agentConn) retire(stop <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	_ = c.cc.Shutdown(ctx)
}

// close ends the stream from the far side (stdin EOF ends the agent, which kills its commands),
// then cancels it if it has not ended in a few seconds.
func (c *agentConn) close(wg *sync.WaitGroup) {
	_ = c.cc.Close()
	_ = c.in.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-c.dead:
		case <-time.After(5 * time.Second):
		}
		c.cancel()
	}()
}

// get returns the open agent, opening it if needed. errNoAgent (wrapped) means the agent cannot
// run in this pod: use the shell paths.
func (l *agentLink) get(ctx context.Context) (*agentConn, error) {
	for {
		l.mu.Lock()
		switch {
		case l.closed:
			l.mu.Unlock()
			return nil, ErrStopped
		case l.noAgent != nil:
			err := l.noAgent
			l.mu.Unlock()
			return nil, err
		case l.cur != nil && l.cur.usable():
			c := l.cur
			l.mu.Unlock()
			return c, nil
		case l.opening != nil:
			wait := l.opening
			l.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if l.cur != nil {
			// The HTTP/2 connection refuses new streams (it is closing, or the stream ended):
			// let its calls in flight finish, then end it; new calls take a new agent.
			old := l.cur
			l.cur = nil
			l.t.s.log.Info("the agent's connection takes no new calls; opening another", "pod", l.t.s.podName,
				"state", fmt.Sprintf("%+v", old.cc.State()), "stream_ended", isEnded(old.dead))
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				old.retire(l.stop)
				old.close(&l.wg)
			}()
		}
		done := make(chan struct{})
		l.opening = done
		l.mu.Unlock()

		// The open outlives a cancelled caller: others may be waiting for it.
		octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		c, err := l.open(octx)
		cancel()
		l.mu.Lock()
		l.opening = nil
		close(done)
		if err == nil && l.closed {
			c.close(&l.wg)
			c, err = nil, ErrStopped
		}
		if err == nil {
			l.cur = c
		}
		if errors.Is(err, errNoAgent) {
			l.noAgent = err
			l.t.s.log.Info("API mode cannot run the agent in this pod; it takes the shell paths", "pod", l.t.s.podName, "reason", err)
		}
		l.mu.Unlock()
		return c, err
	}
}

// open starts the agent: run agentScript, send the binary when asked, send the token line, then
// speak HTTP/2 and check /health.
func (l *agentLink) open(ctx context.Context) (*agentConn, error) {
	t0 := time.Now()
	s := l.t.s
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	in := wire.NewPipe(1 << 20)
	outR, outW := io.Pipe()
	c := &agentConn{in: in, cancel: cancel, dead: make(chan struct{}), stderr: &boundedBuffer{max: 4096}}
	argv := []string{"/bin/sh", "-c", agentScript, "psbx", l.agent.sum, strconv.Itoa(len(l.agent.bin)), l.agent.machine,
		"-workdir", s.cfg.workDir, "-max-file-bytes", strconv.FormatInt(s.cfg.maxFileBytes, 10)}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		cancel()
		return nil, ErrStopped
	}
	l.wg.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.wg.Done()
		code, err := l.t.stream(sctx, argv, in, outW, c.stderr)
		if err == nil {
			c.exited = true
			err = fmt.Errorf("the agent exited with code %d", code)
			if msg := strings.TrimSpace(c.stderr.String()); msg != "" {
				err = fmt.Errorf("%w: %s", err, msg)
			}
		}
		c.deadErr = err
		in.CloseRead(err)
		outW.CloseWithError(err)
		close(c.dead)
	}()
	fail := func(err error) (*agentConn, error) {
		_ = in.Close()
		_ = outR.Close()
		cancel()
		<-c.dead
		return nil, err
	}
	// A script that could not start the agent ended with a code (permanent); a stream that broke
	// did not (try again at the next call).
	ended := func(what string, err error) (*agentConn, error) {
		_, _ = fail(err)
		if c.exited {
			return nil, fmt.Errorf("%w: %s: %v", errNoAgent, what, c.deadErr)
		}
		return nil, fmt.Errorf("podsandbox: agent for %s: %s: %w", s.podName, what, c.deadErr)
	}

	br := bufio.NewReader(outR)
	line, err := br.ReadString('\n')
	if err != nil {
		return ended("starting it", err)
	}
	line = strings.TrimSuffix(line, "\n")
	uploaded := 0
	switch {
	case line == "have":
	case line == "need":
		if _, err := in.Write(l.agent.bin); err != nil {
			return ended("copying it into the pod", err)
		}
		uploaded = len(l.agent.bin)
	case strings.HasPrefix(line, "no "):
		_, _ = fail(nil)
		return nil, fmt.Errorf("%w: %s", errNoAgent, strings.TrimPrefix(line, "no "))
	default:
		_, _ = fail(nil)
		return nil, fmt.Errorf("%w: unexpected answer %q from the start script", errNoAgent, line)
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	token := hex.EncodeToString(b)
	if _, err := io.WriteString(in, token+"\n"); err != nil {
		return ended("sending the token", err)
	}
	tr := &http2.Transport{AllowHTTP: true, ReadIdleTimeout: 30 * time.Second, PingTimeout: 15 * time.Second, MaxReadFrameSize: 1 << 20}
	cc, err := tr.NewClientConn(&wire.StreamConn{R: br, W: in, ExtraClose: outR})
	if err != nil {
		return ended("starting HTTP/2", err)
	}
	c.cc = cc
	c.ht = &httpTransport{s: s, token: token, reach: "agent", client: &http.Client{Transport: cc}, base: "http://psbx-agent"}
	if err := c.ht.health(ctx); err != nil {
		_ = cc.Close()
		if isEnded(c.dead) {
			return ended("its first answer", err)
		}
		return fail(fmt.Errorf("podsandbox: agent for %s: no answer to /health: %w", s.podName, err))
	}
	s.log.Info("API mode talks to the injected agent", "pod", s.podName, "uploaded_bytes", uploaded,
		"elapsed", time.Since(t0).Round(time.Millisecond))
	return c, nil
}

// close ends the open agent and waits for every goroutine of the link.
func (l *agentLink) close() {
	l.mu.Lock()
	if !l.closed {
		close(l.stop)
	}
	l.closed = true
	if l.cur != nil {
		l.cur.close(&l.wg)
		l.cur = nil
	}
	l.mu.Unlock()
	l.wg.Wait()
}

// boundedBuffer keeps the first max bytes written to it (the agent's stderr, for error messages).
type boundedBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - len(b.b); room > 0 {
		b.b = append(b.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *boundedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.b)
}

// agentTransport sends every call to the agent when it runs, and to the API-mode shell paths
// (exec channels, or a pods/exec per call) when it cannot.
type agentTransport struct {
	api  *apiTransport
	link *agentLink
}

func newAgentTransport(api *apiTransport, a *Agent) *agentTransport {
	return &agentTransport{api: api, link: &agentLink{t: api, agent: a, stop: make(chan struct{})}}
}

func (a *agentTransport) close() {
	a.link.close()
	a.api.close()
}

// agent returns the open agent, or nil when the call should take the shell paths: the agent
// cannot run here, or it failed to open just now (logged; the next call tries again).
func (a *agentTransport) agent(ctx context.Context) (*httpTransport, *agentConn, error) {
	c, err := a.link.get(ctx)
	switch {
	case err == nil:
		a.api.s.via.Store(ViaAgent)
		return c.ht, c, nil
	case errors.Is(err, errNoAgent):
		return nil, nil, nil
	case ctx.Err() != nil, errors.Is(err, ErrStopped):
		return nil, nil, err
	}
	a.api.s.log.Warn("the agent did not open; this call takes the shell path", "err", err)
	return nil, nil, nil
}

// lost types an error of a call on c: when the agent's stream has ended the command's end was
// not seen (ErrConnectionLost), or the pod is gone.
func (a *agentTransport) lost(c *agentConn, err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if isEnded(c.dead) || c.cc.State().Closed {
		if a.api.s.gone() {
			return fmt.Errorf("%w: %s: %w", ErrSandboxGone, a.api.s.podName, err)
		}
		if errors.Is(err, ErrConnectionLost) {
			return err
		}
		// The agent ends with its stream and kills its commands as it goes.
		return connectionLost(a.api.s.podName, fmt.Sprintf("the agent's stream ended (%v)", c.deadErr), err)
	}
	return err
}

// viaAgent runs onAgent on the open agent, or onShell when the call takes the shell paths.
func viaAgent[T any](ctx context.Context, a *agentTransport, onAgent func(*httpTransport) (T, error), onShell func() (T, error)) (T, error) {
	ht, ac, err := a.agent(ctx)
	switch {
	case err != nil:
		var zero T
		return zero, err
	case ht == nil:
		return onShell()
	}
	v, err := onAgent(ht)
	return v, a.lost(ac, err)
}

func (a *agentTransport) exec(ctx context.Context, command string, c ExecConfig) (*ExecuteResponse, error) {
	return viaAgent(ctx, a,
		func(ht *httpTransport) (*ExecuteResponse, error) { return ht.exec(ctx, command, c) },
		func() (*ExecuteResponse, error) {
			if c.durable.id != "" {
				return nil, errNoDurable // the caller runs it under the shell supervisor
			}
			return a.api.exec(ctx, command, c)
		})
}

func (a *agentTransport) readBytes(ctx context.Context, p string) ([]byte, error) {
	return viaAgent(ctx, a,
		func(ht *httpTransport) ([]byte, error) { return ht.readBytes(ctx, p) },
		func() ([]byte, error) { return a.api.readBytes(ctx, p) })
}

func (a *agentTransport) read(ctx context.Context, p string, offset, limit int) (string, error) {
	return viaAgent(ctx, a,
		func(ht *httpTransport) (string, error) { return ht.read(ctx, p, offset, limit) },
		func() (string, error) { return a.api.read(ctx, p, offset, limit) })
}

func (a *agentTransport) write(ctx context.Context, p string, content []byte) (int, error) {
	return viaAgent(ctx, a,
		func(ht *httpTransport) (int, error) { return ht.write(ctx, p, content) },
		func() (int, error) { return a.api.write(ctx, p, content) })
}

func (a *agentTransport) edit(ctx context.Context, p, old, new string, replaceAll bool) (int, error) {
	return viaAgent(ctx, a,
		func(ht *httpTransport) (int, error) { return ht.edit(ctx, p, old, new, replaceAll) },
		func() (int, error) { return a.api.edit(ctx, p, old, new, replaceAll) })
}

func (a *agentTransport) ls(ctx context.Context, dir string) ([]fileops.Entry, error) {
	return viaAgent(ctx, a,
		func(ht *httpTransport) ([]fileops.Entry, error) { return ht.ls(ctx, dir) },
		func() ([]fileops.Entry, error) { return a.api.ls(ctx, dir) })
}

func (a *agentTransport) glob(ctx context.Context, pattern, root string) ([]fileops.Entry, error) {
	return viaAgent(ctx, a,
		func(ht *httpTransport) ([]fileops.Entry, error) { return ht.glob(ctx, pattern, root) },
		func() ([]fileops.Entry, error) { return a.api.glob(ctx, pattern, root) })
}

func (a *agentTransport) grep(ctx context.Context, pattern, root, glob string, hidden bool) ([]GrepMatch, error) {
	return viaAgent(ctx, a,
		func(ht *httpTransport) ([]GrepMatch, error) { return ht.grep(ctx, pattern, root, glob, hidden) },
		func() ([]GrepMatch, error) { return a.api.grep(ctx, pattern, root, glob, hidden) })
}

func (a *agentTransport) exists(ctx context.Context, p string) (bool, error) {
	return viaAgent(ctx, a,
		func(ht *httpTransport) (bool, error) { return ht.exists(ctx, p) },
		func() (bool, error) { return a.api.exists(ctx, p) })
}
