package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/internal/e2e"
)

// Row 9: the command line (cmd/podsandbox, built once, run as a fresh process per call as a user
// would) against kubectl, and the MCP server (`podsandbox mcp` as a subprocess, over stdio and
// over streamable HTTP) against the library call its execute tool wraps, on the same pod.

const (
	mcpOverheadTarget = 2e-3 // seconds: MCP p50 − library p50
	cliTarget         = 0.5  // CLI p50 / kubectl p50
	toolExecTimeout   = 120 * time.Second
	cliRunTimeout     = 2 * time.Minute // a guard: one CLI or MCP call that hangs fails, the row goes on
)

// cliPods are the two pods the CLI and kubectl exec into: HTTP mode (server image) and API mode
// (busybox), made by the bench's Client and deleted by stop.
type cliPods struct {
	http, api *podsandbox.KubernetesPodSandbox
}

func (b *bench) startCLIPods(ctx context.Context) (*cliPods, error) {
	p := &cliPods{}
	var err error
	if p.http, err = b.client.NewSandbox(e2e.ImageServer, b.sandboxOptions(podsandbox.ModeHTTP,
		podsandbox.WithSandboxID("bench-cli-http"))...); err != nil {
		return p, err
	}
	if p.api, err = b.client.NewSandbox(e2e.ImageBusybox, b.sandboxOptions(podsandbox.ModeAPI,
		podsandbox.WithSandboxID("bench-cli-api"))...); err != nil {
		return p, err
	}
	errc := make(chan error, 2)
	go func() { errc <- p.http.Start(ctx) }()
	go func() { errc <- p.api.Start(ctx) }()
	return p, errors.Join(<-errc, <-errc)
}

// stop deletes the pods and waits until they are gone; it may be called again.
func (p *cliPods) stop(ctx context.Context, b *bench) {
	var names []string
	for _, sb := range []*podsandbox.KubernetesPodSandbox{p.http, p.api} {
		if sb != nil {
			_ = sb.Stop(ctx)
			names = append(names, sb.PodName())
		}
	}
	p.http, p.api = nil, nil
	_ = b.waitPodsGone(ctx, names...)
}

// buildCLI builds cmd/podsandbox to bin.
func (b *bench) buildCLI(ctx context.Context, bin string) error {
	var out bytes.Buffer
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/podsandbox")
	build.Dir, build.Stdout, build.Stderr = b.root, os.Stderr, io.MultiWriter(os.Stderr, &out)
	if err := build.Run(); err != nil {
		if ctx.Err() != nil {
			return errInterrupted
		}
		return fmt.Errorf("building cmd/podsandbox: %w: %s", err, lastLines(out.String(), 3))
	}
	return nil
}

// cliWarmup is the CLI loop's warm-up: at most 2 rounds of 7 processes (it warms the page cache
// and the API server's connections; more would only lengthen the row).
func (b *bench) cliWarmup() int { return min(b.opt.execWarmup, 2) }

// cliArgs puts the global flags every podsandbox command of the bench gets before args.
func (b *bench) cliArgs(args ...string) []string {
	return append([]string{"--kubeconfig", b.kubeconfig, "-n", b.ns}, args...)
}

// runCLI runs the podsandbox binary once, as a user would: a new process, stdout discarded,
// stderr shown only when it fails.
func (b *bench) runCLI(ctx context.Context, bin string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, cliRunTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, b.cliArgs(args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("podsandbox %s: %w: %s", strings.Join(args, " "), err, lastLines(stderr.String(), 3))
	}
	return nil
}

// freshClientExec is what `podsandbox exec ID -- true` does, in this process: load the
// kubeconfig, make a Client, attach by id, Execute with the output streamed (and none kept),
// detach, close the Client. The CLI's time minus this is the process: start, init, exit. It
// also returns how long Attach took.
func (b *bench) freshClientExec(ctx context.Context, id string) (attach time.Duration, err error) {
	cfg, err := podsandbox.LoadConfig(b.kubeconfig, nil)
	if err != nil {
		return 0, err
	}
	cl, err := podsandbox.NewClient(cfg, podsandbox.WithClientLogger(b.libLog))
	if err != nil {
		return 0, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if cerr := cl.Close(cctx); err == nil {
			err = cerr
		}
	}()
	t0 := time.Now()
	sb, err := cl.Attach(ctx, b.ns, id)
	attach = time.Since(t0)
	if err != nil {
		return attach, err
	}
	defer sb.Stop(context.WithoutCancel(ctx)) //nolint:errcheck // detach only
	resp, err := sb.Execute(ctx, "true", podsandbox.WithStdout(io.Discard), podsandbox.WithStderr(io.Discard),
		podsandbox.WithOutputLimit(1))
	if err == nil && resp.ExitCode != 0 {
		err = fmt.Errorf("exit code %d", resp.ExitCode)
	}
	return attach, err
}

// timed turns an action into a variant's run: its wall time in seconds.
func timed(f func(ctx context.Context) error) func(ctx context.Context) (float64, error) {
	return func(ctx context.Context) (float64, error) {
		t0 := time.Now()
		err := f(ctx)
		return time.Since(t0).Seconds(), err
	}
}

// rowCLI is row 9: the CLI against kubectl, then MCP against the library.
func (b *bench) rowCLI(ctx context.Context, blk *Block) error {
	cleanup := context.WithoutCancel(ctx)
	dir, err := os.MkdirTemp("", "bench-cli-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "podsandbox")

	buildErr := make(chan error, 1) // the build runs while the pods start
	go func() { buildErr <- b.buildCLI(ctx, bin) }()
	pods, err := b.startCLIPods(ctx)
	defer pods.stop(cleanup, b)
	if err = errors.Join(err, <-buildErr); err != nil {
		if ctx.Err() != nil {
			return errInterrupted
		}
		return err
	}
	b.progress("row 9: %s built; pods %s (HTTP), %s (API) ready", bin, pods.http.PodName(), pods.api.PodName())
	if err := b.rowCLIExec(ctx, blk, bin, pods); err != nil {
		return err
	}
	pods.stop(cleanup, b) // gone before the MCP servers start theirs
	return b.rowMCP(ctx, blk, bin)
}

// rowCLIExec is row 9's first half: `podsandbox exec ID -- true` and `kubectl exec POD -- true`,
// each a fresh process, on the same pods, with the process start of each tool and the CLI's
// library path in this process beside them, to show where the CLI's time goes.
func (b *bench) rowCLIExec(ctx context.Context, blk *Block, bin string, p *cliPods) error {
	cliExec := func(id string) func(ctx context.Context) error {
		return func(ctx context.Context) error { return b.runCLI(ctx, bin, "exec", id, "--", "true") }
	}
	kcExec := func(pod string) func(ctx context.Context) error {
		return func(ctx context.Context) error { return b.kubectl(ctx, nil, "exec", pod, "--", "true") }
	}
	httpID := p.http.ID()
	cliHTTP := &variant{name: "podsandbox exec, HTTP pod", run: timed(cliExec(httpID))}
	kcHTTP := &variant{name: "kubectl exec", run: timed(kcExec(p.http.PodName()))}
	cliAPI := &variant{name: "podsandbox exec, API pod", run: timed(cliExec(p.api.ID()))}
	kcAPI := &variant{name: "kubectl exec", run: timed(kcExec(p.api.PodName()))}
	var attach []float64 // the Attach part of each successful fresh run, warm-up first
	fresh := &variant{name: "library, fresh Client", run: timed(func(ctx context.Context) error {
		d, err := b.freshClientExec(ctx, httpID)
		if err == nil {
			attach = append(attach, d.Seconds())
		}
		return err
	})}
	help := &variant{name: "podsandbox --help", run: timed(func(ctx context.Context) error { return b.runCLI(ctx, bin, "--help") })}
	kcVer := &variant{name: "kubectl version --client", run: timed(func(ctx context.Context) error { return b.kubectl(ctx, nil, "version", "--client") })}
	vs := []*variant{cliHTTP, kcHTTP, cliAPI, kcAPI, fresh, help, kcVer}
	err := interleave(ctx, vs, b.cliWarmup(), b.opt.cliIters, func(i int) {
		if i%10 == 0 {
			b.progress("row 9: CLI %d/%d iterations", i, b.opt.cliIters)
		}
	})
	if err != nil {
		return err
	}
	attach = attach[min(b.cliWarmup(), len(attach)):] // a failed warm-up aborts, so the first ones are the warm-up's

	r, ratio, lo, hi := compare("CLI: podsandbox exec ID -- true, HTTP mode (a fresh process)", cliHTTP, kcHTTP, FormatSeconds, true)
	r.Baseline = "kubectl exec, same pod " + FormatSeconds(kcHTTP.p(50))
	r.Target, r.Result = fmt.Sprintf("≤ %s× kubectl", sig3(cliTarget)), Verdict(ratio <= cliTarget)
	blk.Add(r)
	noise(blk, "CLI HTTP mode vs kubectl", cliTarget, lo, hi)
	r, _, _, _ = compare("CLI: podsandbox exec ID -- true, API mode (a fresh process)", cliAPI, kcAPI, FormatSeconds, true)
	r.Baseline = "kubectl exec, same pod " + FormatSeconds(kcAPI.p(50))
	r.Target = "(information)"
	blk.Add(r)
	r, _, _, _ = compare("  its parts: podsandbox --help (process start, init, exit)", help, kcVer, FormatSeconds, true)
	blk.Add(r)
	r, _, _, _ = compare("  its parts: exec's library path in this process, fresh Client, HTTP pod", fresh, cliHTTP, FormatSeconds, true)
	r.Baseline = "the CLI, HTTP mode " + FormatSeconds(cliHTTP.p(50))
	blk.Add(r)
	for _, c := range []struct {
		name string
		v    *variant
	}{
		{"kubectl exec POD -- true, HTTP-mode pod (baseline)", kcHTTP},
		{"kubectl exec POD -- true, API-mode pod (baseline)", kcAPI},
		{"kubectl version --client: process start, exit (baseline)", kcVer},
	} {
		r, _, _, _ = compare(c.name, c.v, nil, FormatSeconds, true)
		blk.Add(r)
	}
	blk.Note("CLI: cmd/podsandbox built once (go build); every podsandbox and kubectl run is a new process, timed from fork to exit, both with --kubeconfig and -n")
	blk.Note("CLI: `podsandbox exec` attaches by id (GET pod; HTTP mode: GET its token Secret), runs `true` (HTTP mode by pods/proxy: reach auto outside a cluster), detaches and closes its Client; kubectl exec is one pods/exec")
	if len(cliHTTP.samples) > 0 && len(help.samples) > 0 && len(fresh.samples) > 0 && len(attach) > 0 {
		blk.Note("CLI: where its HTTP-mode %s (p50) goes: process start, init and exit ≈ %s (--help); the library path ≈ %s (LoadConfig, NewClient, Attach, Execute, Close in this process), of which Attach %s (p50: a GET, and the new pod watch's first LIST); kubectl's process alone ≈ %s",
			FormatSeconds(cliHTTP.p(50)), FormatSeconds(help.p(50)), FormatSeconds(fresh.p(50)), FormatSeconds(Percentile(attach, 50)), FormatSeconds(kcVer.p(50)))
	}
	b.checkErrors(blk, vs...)
	return nil
}

// mcpSide is one MCP server subprocess with its client session, and the bench's own sandbox
// attached to the session's pod.
type mcpSide struct {
	name  string
	cs    *mcp.ClientSession
	lib   *podsandbox.KubernetesPodSandbox
	close func(ctx context.Context) error // ends the session and waits for the server process to exit
}

// shutdown detaches the bench's sandbox, ends the session (the server deletes its pod) and waits
// until the server has exited and the pod is gone.
func (s *mcpSide) shutdown(ctx context.Context, b *bench) error {
	var pod string
	if s.lib != nil {
		pod = s.lib.PodName()
		_ = s.lib.Stop(ctx) // detach only
	}
	err := s.close(ctx)
	if pod != "" {
		err = errors.Join(err, b.waitPodsGone(ctx, pod))
	}
	return err
}

// mcpServerArgs is `podsandbox mcp` for HTTP-mode sessions on the server image, execute allowed.
func (b *bench) mcpServerArgs(extra ...string) []string {
	return b.cliArgs(append([]string{"mcp", "--image", e2e.ImageServer, "--mode", string(podsandbox.ModeHTTP),
		"--image-pull-policy", "Never", "--approve-all"}, extra...)...)
}

// callTrue calls the execute tool with `true` and checks its result.
func callTrue(ctx context.Context, cs *mcp.ClientSession) error {
	ctx, cancel := context.WithTimeout(ctx, cliRunTimeout)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "execute", Arguments: map[string]any{"command": "true"}})
	if err != nil {
		return err
	}
	var text strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			text.WriteString(tc.Text)
		}
	}
	if t := text.String(); res.IsError || strings.HasPrefix(t, "Error") || strings.HasPrefix(t, "Command failed") {
		return fmt.Errorf("execute `true`: %.200q (tool error %v)", t, res.IsError)
	}
	return nil
}

// startMCPStdio starts `podsandbox mcp` on stdio through the SDK's CommandTransport, makes its
// session's pod with a first call, finds that pod (its sandbox id is mcp-stdio-<random>) and
// attaches to it.
func (b *bench) startMCPStdio(ctx context.Context, bin string) (*mcpSide, error) {
	stderr := newStderrTail()
	cmd := exec.CommandContext(ctx, bin, b.mcpServerArgs()...)
	cmd.Stderr = stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) } // it deletes its pod on SIGINT
	cmd.WaitDelay = 90 * time.Second
	client := mcp.NewClient(&mcp.Implementation{Name: "podsandbox-bench"}, nil)
	// Closing the session closes the server's stdin; it then deletes its pod and exits.
	t := &keptTransport{Transport: &mcp.CommandTransport{Command: cmd, TerminateDuration: time.Minute}}
	cs, err := client.Connect(ctx, t, nil)
	if err != nil {
		if t.conn != nil {
			_ = t.conn.Close() // closes the server's stdin and waits for it to exit
		}
		return nil, fmt.Errorf("podsandbox mcp (stdio): %w: %s", err, stderr)
	}
	s := &mcpSide{name: "stdio", cs: cs, close: func(context.Context) error { return cs.Close() }}
	if err := callTrue(ctx, cs); err != nil {
		return s, fmt.Errorf("podsandbox mcp (stdio): first call: %w: %s", err, stderr)
	}
	l, err := b.cs.CoreV1().Pods(b.ns).List(ctx, metav1.ListOptions{LabelSelector: podsandbox.LabelManagedBy + "=" + podsandbox.ManagedByValue})
	if err != nil {
		return s, err
	}
	var ids []string
	for _, p := range l.Items {
		if id := p.Annotations[podsandbox.AnnotationSandboxID]; strings.HasPrefix(id, "mcp-stdio-") && p.DeletionTimestamp == nil {
			ids = append(ids, id)
		}
	}
	if len(ids) != 1 {
		return s, fmt.Errorf("podsandbox mcp (stdio): %d pods of sandbox id mcp-stdio-*, want 1: %v", len(ids), ids)
	}
	if s.lib, err = b.client.Attach(ctx, b.ns, ids[0], podsandbox.WithLogger(b.libLog)); err != nil {
		return s, fmt.Errorf("attach to the stdio session's sandbox %s: %w", ids[0], err)
	}
	return s, nil
}

// keptTransport keeps the connection its transport made, to close it when Connect fails after the
// subprocess started.
type keptTransport struct {
	mcp.Transport
	conn mcp.Connection
}

func (t *keptTransport) Connect(ctx context.Context) (mcp.Connection, error) {
	c, err := t.Transport.Connect(ctx)
	t.conn = c
	return c, err
}

// startMCPHTTP starts `podsandbox mcp --http 127.0.0.1:0` as a subprocess, reads the address it
// listens on from its stderr, connects the SDK's streamable HTTP client, makes the session's pod
// with a first call and attaches to it (sandbox id mcp-<MCP session id>).
func (b *bench) startMCPHTTP(ctx context.Context, bin string) (*mcpSide, error) {
	stderr := newStderrTail()
	cmd := exec.CommandContext(ctx, bin, b.mcpServerArgs("--http", "127.0.0.1:0")...)
	cmd.Stderr = stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 90 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	stopServer := func(ctx context.Context) error {
		_ = cmd.Process.Signal(os.Interrupt) // it ends its sessions, deletes their pods and exits
		t := time.NewTimer(90 * time.Second)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("podsandbox mcp --http did not exit within 90 s of SIGINT: killed: %s", stderr)
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-done
			return ctx.Err()
		}
		var ee *exec.ExitError
		if waitErr != nil && !errors.As(waitErr, &ee) { // an exit code after SIGINT is no failure of the bench
			return waitErr
		}
		return nil
	}
	var url string
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	select {
	case url = <-stderr.url:
	case <-done:
		return nil, fmt.Errorf("podsandbox mcp --http exited before it listened: %v: %s", waitErr, stderr)
	case <-t.C:
		_ = stopServer(ctx)
		return nil, fmt.Errorf("podsandbox mcp --http printed no http://127.0.0.1:PORT address within a minute: %s", stderr)
	case <-ctx.Done():
		_ = stopServer(context.WithoutCancel(ctx))
		return nil, errInterrupted
	}
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	client := mcp.NewClient(&mcp.Implementation{Name: "podsandbox-bench"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: hc}, nil)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("MCP over %s: %w: %s", url, err, stderr), stopServer(context.WithoutCancel(ctx)))
	}
	s := &mcpSide{name: "streamable HTTP", cs: cs, close: func(ctx context.Context) error {
		cerr := cs.Close() // ends the MCP session: the server deletes its pod
		hc.CloseIdleConnections()
		return errors.Join(cerr, stopServer(ctx))
	}}
	if err := callTrue(ctx, cs); err != nil {
		return s, fmt.Errorf("MCP over %s: first call: %w: %s", url, err, stderr)
	}
	id := "mcp-" + cs.ID() // mcpserver's sandbox id for a session with an id
	if s.lib, err = b.client.Attach(ctx, b.ns, id, podsandbox.WithLogger(b.libLog)); err != nil {
		return s, fmt.Errorf("attach to the HTTP session's sandbox %s: %w", id, err)
	}
	return s, nil
}

// rowMCP is row 9's second half: the execute tool over MCP (stdio and streamable HTTP) against
// the library's Execute on the same pod by the same transport, interleaved.
func (b *bench) rowMCP(ctx context.Context, blk *Block, bin string) error {
	cleanup := context.WithoutCancel(ctx)
	var sides [2]*mcpSide
	var errs [2]error
	var wg sync.WaitGroup // both servers and their pods start at once
	wg.Go(func() { sides[0], errs[0] = b.startMCPStdio(ctx, bin) })
	wg.Go(func() { sides[1], errs[1] = b.startMCPHTTP(ctx, bin) })
	wg.Wait()
	defer func() {
		for _, s := range sides {
			if s != nil {
				if err := s.shutdown(cleanup, b); err != nil && ctx.Err() == nil { // on Ctrl-C the servers stop on their own
					blk.Note("MCP %s: shutdown: %s", s.name, strings.ReplaceAll(err.Error(), "\n", "; "))
				}
			}
		}
	}()
	if err := errors.Join(errs[:]...); err != nil {
		if ctx.Err() != nil {
			return errInterrupted
		}
		return err
	}
	b.progress("row 9: MCP sessions ready: stdio on pod %s, streamable HTTP on pod %s", sides[0].lib.PodName(), sides[1].lib.PodName())

	type pair struct{ mcp, lib *variant }
	pairs := make([]pair, len(sides))
	var vs []*variant
	for i, s := range sides {
		sb := s.lib
		pairs[i] = pair{
			mcp: &variant{name: "MCP " + s.name, run: timed(func(ctx context.Context) error { return callTrue(ctx, s.cs) })},
			lib: &variant{name: "library Execute, " + s.name + " session's pod", run: timed(func(ctx context.Context) error {
				resp, err := sb.Execute(ctx, "true", podsandbox.WithTimeout(toolExecTimeout))
				if err == nil && resp.ExitCode != 0 {
					err = fmt.Errorf("exit code %d: %s", resp.ExitCode, resp.Output)
				}
				return err
			})},
		}
		vs = append(vs, pairs[i].mcp, pairs[i].lib)
	}
	err := interleave(ctx, vs, b.opt.execWarmup, b.opt.mcpIters, func(i int) {
		if i%50 == 0 {
			b.progress("row 9: MCP %d/%d iterations", i, b.opt.mcpIters)
		}
	})
	if err != nil {
		return err
	}

	for i, p := range pairs {
		s := sides[i]
		r, _, _, _ := compare("MCP "+s.name+": tools/call execute `true`", p.mcp, p.lib, FormatSeconds, true)
		r.Baseline = "library Execute, same pod " + FormatSeconds(p.lib.p(50))
		over := p.mcp.p(50) - p.lib.p(50)
		r.Target = fmt.Sprintf("overhead ≤ %s ms", sig3(mcpOverheadTarget*1e3))
		if !math.IsNaN(over) {
			r.Result = Verdict(over <= mcpOverheadTarget)
		}
		blk.Add(r)
		lo, hi := DiffCI(p.mcp.samples, p.lib.samples, 2000)
		p50, ci := formatOverhead(over, lo, hi)
		blk.Add(Row{Name: "  overhead: MCP p50 − library p50", P50: p50, Ratio: ci})
		if !math.IsNaN(lo) && lo <= mcpOverheadTarget && mcpOverheadTarget <= hi {
			blk.Note("MCP %s: the overhead's 95%% interval %s contains the target %s ms: within noise, the verdict may flip on a rerun",
				s.name, ci, sig3(mcpOverheadTarget*1e3))
		}
		r, _, _, _ = compare("library Execute `true`, "+s.name+" session's pod, attached (baseline)", p.lib, nil, FormatSeconds, true)
		blk.Add(r)
	}
	blk.Note("MCP: `podsandbox mcp --image %s --mode http --approve-all` as a subprocess per transport: stdio by the SDK's CommandTransport; streamable HTTP by `--http 127.0.0.1:0` and the SDK's StreamableClientTransport; one MCP session each, its pod made by the first (warm-up) call",
		e2e.ImageServer)
	blk.Note("MCP: the baseline is this process attached (Client.Attach) to the same session's pod, calling Execute(`true`, timeout %s) as the execute tool does, by the same transport (reach auto: pods/proxy outside a cluster); MCP and library calls alternate",
		toolExecTimeout)
	blk.Note("MCP: the overhead is the SDK client, JSON-RPC over the pipe or HTTP, the server's dispatch and the toolset, and a second process's copy of the library path; its [95%% CI] is a bootstrap interval of the difference of the p50s")
	blk.Note("MCP: the sessions' pods have the library's default resources (requests 100m CPU, 256Mi): `podsandbox mcp` has no flag for them")
	b.checkErrors(blk, vs...)
	return nil
}

// formatOverhead formats an overhead in seconds and its interval in milliseconds, signed:
// "+1.23 ms", "[+0.91 – +1.52 ms]".
func formatOverhead(d, lo, hi float64) (p50, ci string) {
	if math.IsNaN(d) {
		return "-", ""
	}
	p50 = fmt.Sprintf("%+.2f ms", d*1e3)
	if !math.IsNaN(lo) && !math.IsNaN(hi) {
		ci = fmt.Sprintf("[%+.2f – %+.2f ms]", lo*1e3, hi*1e3)
	}
	return p50, ci
}

// stderrTail keeps the end of what a subprocess writes to its stderr, for error messages, and
// sends the first http://127.0.0.1:PORT/ address in it on url: where `podsandbox mcp --http
// 127.0.0.1:0` listens (it prints the address it got).
type stderrTail struct {
	url chan string // capacity 1; gets at most one address

	mu   sync.Mutex
	tail []byte
	line []byte // the line being written, until the address is found
	sent bool
}

const stderrTailMax = 4096

func newStderrTail() *stderrTail { return &stderrTail{url: make(chan string, 1)} }

func (w *stderrTail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tail = append(w.tail, p...)
	if len(w.tail) > 2*stderrTailMax {
		w.tail = append([]byte(nil), w.tail[len(w.tail)-stderrTailMax:]...)
	}
	if w.sent {
		return len(p), nil
	}
	w.line = append(w.line, p...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			break
		}
		l := string(w.line[:i])
		w.line = w.line[i+1:]
		if u, ok := listenURL(l); ok {
			w.url <- u
			w.sent, w.line = true, nil
			break
		}
	}
	return len(p), nil
}

// String returns the last lines written.
func (w *stderrTail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.tail
	if len(t) > stderrTailMax {
		t = t[len(t)-stderrTailMax:]
	}
	return lastLines(string(t), 3)
}

// listenURL finds an http://127.0.0.1:PORT address in a line and returns it with a trailing
// slash.
func listenURL(line string) (string, bool) {
	const prefix = "http://127.0.0.1:"
	i := strings.Index(line, prefix)
	if i < 0 {
		return "", false
	}
	rest := line[i+len(prefix):]
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 {
		return "", false
	}
	return prefix + rest[:n] + "/", true
}
