// Command bench measures podsandbox on the local cluster against its baselines (kubectl and bare
// client-go), measured side by side in the same run, and prints one table (also written to
// bench.txt in the checkout root). `make bench` runs it through hack/bench.sh, which first runs the
// in-memory Go benchmarks and passes their output with -gobench.
//
//	go run ./internal/bench [-quick] [-only 1,3] [-exec-iters 100] [-start-runs 10] ...
//
// It creates its own namespace (psbx-bench-<random>) and deletes it at the end, also on Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/internal/e2e"
)

const module = "github.com/podsandbox/podsandbox"

type options struct {
	kubeconfig string
	kubectl    string
	out        string
	gobench    string
	gobenchCmd string
	quick      bool
	only       string
	cpuprofile string
	samples    string
	scale      bool

	execIters, execWarmup int
	startRuns, startWarm  int
	tputRuns, tputMiB     int
	poolSize, poolClaims  int
	sessions              int
	cliIters, mcpIters    int
	drops                 int
}

// Required minimums from the issue; a run below them says so in the table.
const (
	minExecIters  = 50
	minStartRuns  = 10
	minTputRuns   = 20
	minTputMiB    = 100
	minSessions   = 50
	sessionsLimit = 15 * time.Second
)

type bench struct {
	opt        options
	root       string
	kubeconfig string
	cfg        *rest.Config
	cs         *kubernetes.Clientset
	client     *podsandbox.Client // every sandbox, factory and pool of the bench is made from it
	agent      *podsandbox.Agent  // cmd/sandbox-server, built at setup, for the WithAgent variants
	ns         string
	libLog     *slog.Logger
	table      *Table
	blocks     map[int]*Block
	failed     bool
	loud       []string            // silent truncation or corruption by podsandbox: reported loudly
	cold       map[string]*variant // row 2's cold starts by mode, reused by row 4
	raw        []string            // raw samples, for -samples
	execFloor  float64             // row 1's bare client-go exec p50 (seconds), 0 when row 1 did not run
}

func main() {
	os.Exit(run())
}

func run() int {
	var o options
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig (default $KUBECONFIG, else .cluster/kubeconfig in the checkout)")
	flag.StringVar(&o.kubectl, "kubectl", "/usr/bin/kubectl", "kubectl binary for the baselines")
	flag.StringVar(&o.out, "out", "", "also write the table here (default bench.txt in the checkout root; \"-\" for none)")
	flag.StringVar(&o.gobench, "gobench", "", "file with `go test -bench` output of the root package (row 5)")
	flag.StringVar(&o.gobenchCmd, "gobench-cmd", "", "the go test command that produced -gobench (shown in the table)")
	flag.BoolVar(&o.quick, "quick", false, "short run: small counts (below the required ones; the table says so)")
	flag.StringVar(&o.only, "only", "", "comma-separated rows to run (1-13); default all")
	flag.IntVar(&o.execIters, "exec-iters", 100, "row 1: measured iterations per variant")
	flag.IntVar(&o.drops, "drops", 100, "row 12: calls whose connections are cut, per transport")
	flag.IntVar(&o.execWarmup, "exec-warmup", 5, "row 1: warm-up iterations per variant")
	flag.IntVar(&o.startRuns, "start-runs", 10, "row 2: cold starts per variant")
	flag.IntVar(&o.startWarm, "start-warmup", 1, "row 2: unrecorded warm-up rounds")
	flag.IntVar(&o.tputRuns, "tput-runs", 20, "row 3: runs per transport")
	flag.IntVar(&o.tputMiB, "tput-mib", 100, "row 3: MiB of stdout per run")
	flag.IntVar(&o.poolSize, "pool-size", 2, "row 4: warm pool size")
	flag.IntVar(&o.poolClaims, "pool-claims", 20, "row 4: claims per mode")
	flag.IntVar(&o.sessions, "sessions", 50, "row 6: sessions created at once")
	flag.IntVar(&o.cliIters, "cli-iters", 25, "row 9: measured CLI and kubectl runs per variant (after min(-exec-warmup, 2))")
	flag.IntVar(&o.mcpIters, "mcp-iters", 200, "row 9: measured MCP and library calls per variant (after -exec-warmup)")
	flag.BoolVar(&o.scale, "scale", false, "row 7: run the simulated-scale scenarios (needs the kwok nodes of make kwok-up; hack/bench.sh starts them and sets this)")
	flag.StringVar(&o.samples, "samples", "", "also write every raw sample to this file (one line per variant)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of this program (the client side) to this file")
	flag.Parse()
	if o.quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quick := map[string]*int{"exec-iters": &o.execIters, "exec-warmup": &o.execWarmup, "start-runs": &o.startRuns,
			"start-warmup": &o.startWarm, "tput-runs": &o.tputRuns, "pool-claims": &o.poolClaims, "sessions": &o.sessions,
			"cli-iters": &o.cliIters, "mcp-iters": &o.mcpIters, "drops": &o.drops}
		vals := map[string]int{"exec-iters": 20, "exec-warmup": 2, "start-runs": 3, "start-warmup": 0, "tput-runs": 3, "pool-claims": 5, "sessions": 10,
			"cli-iters": 10, "mcp-iters": 50, "drops": 10}
		for k, p := range quick {
			if !set[k] {
				*p = vals[k]
			}
		}
	}

	b := &bench{opt: o, blocks: map[int]*Block{}, cold: map[string]*variant{}}
	b.libLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := b.setup(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); stop() }() // a second Ctrl-C kills at once

	if err := b.checkCluster(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	if err := b.createNamespace(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		b.cleanup()
		return 1
	}
	defer b.cleanup()
	b.progress("namespace %s", b.ns)

	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: cpu profile: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	code := b.runAll(ctx)
	out := b.table.String()
	fmt.Print("\n" + out)
	if b.opt.out != "-" {
		if err := os.WriteFile(b.opt.out, []byte(out), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		} else {
			b.progress("table written to %s", b.opt.out)
		}
	}
	if o.samples != "" {
		if err := os.WriteFile(o.samples, []byte(strings.Join(b.raw, "\n")+"\n"), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		}
	}
	return code
}

// setup finds the checkout and loads the client configuration.
func (b *bench) setup() error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if m, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.Contains(string(m), "module "+module+"\n") {
			b.root = d
			break
		}
		if filepath.Dir(d) == d {
			return fmt.Errorf("run from inside the podsandbox checkout (no go.mod of %s above %s)", module, wd)
		}
	}
	if b.opt.out == "" {
		b.opt.out = filepath.Join(b.root, "bench.txt")
	}
	b.kubeconfig = b.opt.kubeconfig
	if b.kubeconfig == "" {
		b.kubeconfig = os.Getenv("KUBECONFIG")
	}
	if b.kubeconfig == "" {
		b.kubeconfig = filepath.Join(b.root, ".cluster", "kubeconfig")
	}
	if _, err := os.Stat(b.kubeconfig); err != nil {
		return fmt.Errorf("no kubeconfig at %s: start the local cluster with `make cluster-up` (or set KUBECONFIG)", b.kubeconfig)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", b.kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", b.kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	b.cfg = cfg
	if b.cs, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	b.client, err = podsandbox.NewClient(cfg, podsandbox.WithClientset(b.cs), podsandbox.WithClientLogger(b.libLog))
	if err != nil {
		return err
	}
	bin, err := e2e.BuildAgent()
	if err != nil {
		return err
	}
	b.agent, err = podsandbox.NewAgent(bin)
	return err
}

func (b *bench) checkCluster(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := b.cs.Discovery().ServerVersion(); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("the cluster at %s (kubeconfig %s) does not answer: %v\nstart it with `make cluster-up`", b.cfg.Host, b.kubeconfig, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("the cluster at %s (kubeconfig %s) does not answer within 15 s\nstart it with `make cluster-up`", b.cfg.Host, b.kubeconfig)
	}
}

func (b *bench) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if b.client != nil {
		_ = b.client.Close(ctx)
	}
	if b.ns == "" {
		return
	}
	b.progress("deleting namespace %s", b.ns)
	if err := b.deleteNamespace(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "bench: deleting namespace %s: %v (delete it by hand: kubectl delete ns %s)\n", b.ns, err, b.ns)
	}
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// runAll runs the selected rows and builds the table. Rows 1 and 3 share their pods; rows run in
// the order 5, 1, 3, 2, 4, 6 (the shared pods are gone before the cold-start rows), 9 (its own
// pods and subprocesses, gone before it ends), 10 (its own pod), 8 (its 200 real pods are gone before it ends),
// then 7, whose thousands of fake pods must not load the cluster while the other rows run.
func (b *bench) runAll(ctx context.Context) int {
	t0 := time.Now()
	b.table = &Table{}
	titles := []string{
		"",
		fmt.Sprintf("1. Exec of `true`, interleaved round-robin (%d iterations per variant after %d warm-up)", b.opt.execIters, b.opt.execWarmup),
		fmt.Sprintf("2. Time to first command: Start, then `true` done (cold; %d runs per variant, interleaved)", b.opt.startRuns),
		fmt.Sprintf("3. %d MiB of stdout (`cat` of a file with a known sha256), %d runs per transport, interleaved", b.opt.tputMiB, b.opt.tputRuns),
		fmt.Sprintf("4. Warm pool (size %d): pool.Claim, then `true` done; %d claims per mode, each from a full pool", b.opt.poolSize, b.opt.poolClaims),
		"5. In-memory (go test -bench, root package)",
		fmt.Sprintf("6. %d sessions created at once (SessionManager.GetOrCreate, HTTP mode by pod IP), then `true` on each", b.opt.sessions),
		"7. Scale (simulated): kwok's fake nodes, API mode, the control plane only (internal/scale: sessions, informer, warm pool over 3 managers, reap)",
		fmt.Sprintf("8. Scale (real): %d API-mode sessions as real pods through one Client and one SessionManager (internal/scale -real)", realSessions),
		fmt.Sprintf("9. CLI and MCP: `podsandbox exec ID -- true` (a fresh process each) vs kubectl exec, %d runs per variant after %d warm-up; MCP tools/call execute `true` vs the library's Execute on the same pod, %d calls per variant after %d warm-up; each interleaved",
			b.opt.cliIters, b.cliWarmup(), b.opt.mcpIters, b.opt.execWarmup),
		fmt.Sprintf("10. Tracing overhead: Execute `true` with the OpenTelemetry SDK installed vs the default no-op providers, same pod, %d iterations per variant after %d warm-up, interleaved", b.tracingIters(), b.opt.execWarmup),
		fmt.Sprintf("11. API mode's calls: file operations, 10 MiB of stdout with the default cap, 32 concurrent Execute; the injected agent against a pods/exec per call, HTTP mode beside them; %d iterations per variant after 1 warm-up, interleaved", max(b.opt.execIters/10, 5)),
	}
	titles = append(titles, fmt.Sprintf("12. Execute WithReattach: its cost on `true` against a plain Execute (%d iterations per variant after 2 warm-up, interleaved); then %d calls per transport writing 1 MiB with the API server connections cut once the first bytes arrived, and %d uncut",
		max(b.opt.execIters/5, 10), b.opt.drops, b.opt.drops/5))
	titles = append(titles, fmt.Sprintf("13. Isolation: Start + `true` (cold, %d runs per variant) and exec `true` (%d iterations), runc against the gvisor RuntimeClass in both modes; the default NetworkPolicy against WithOpenNetwork on Start, and the enforcer's rule sync; interleaved",
		max(b.opt.startRuns/2, 3), max(b.opt.execIters/2, 10)))
	for i := 1; i <= 13; i++ {
		b.blocks[i] = b.table.AddBlock(titles[i])
	}
	b.header(ctx)
	startOthers, startLoad := b.otherPods(ctx), loadAvg()

	want := map[int]bool{}
	for _, s := range strings.Split(b.opt.only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			var n int
			fmt.Sscan(s, &n)
			want[n] = true
		}
	}
	sel := func(n int) bool { return len(want) == 0 || want[n] }

	step := func(n int, f func(context.Context, *Block) error) {
		if !sel(n) {
			b.blocks[n].Note("not run (-only %s)", b.opt.only)
			return
		}
		if ctx.Err() != nil {
			b.blocks[n].Note("not run: interrupted")
			return
		}
		ts := time.Now()
		b.progress("row %d: start", n)
		if err := f(ctx, b.blocks[n]); errors.Is(err, errInterrupted) || (err != nil && ctx.Err() != nil) {
			b.blocks[n].Note("interrupted (Ctrl-C): this row's figures are missing or partial")
		} else if err != nil {
			b.failed = true
			b.blocks[n].Note("FAILED: %v", err)
			b.progress("row %d: FAILED: %v", n, err)
		}
		b.progress("row %d: done in %s", n, time.Since(ts).Round(time.Second))
		if n != 5 { // row 5 only reads what hack/bench.sh's go test produced
			b.blocks[n].Note("row took %s of wall time", time.Since(ts).Round(time.Second))
		}
	}
	step(5, b.rowGoBench)
	if sel(1) || sel(3) || sel(11) || sel(12) {
		if ctx.Err() == nil {
			p, err := b.startSharedPods(ctx)
			if err != nil {
				b.failed = true
				b.blocks[1].Note("FAILED to start the pods: %v", err)
				b.blocks[3].Note("FAILED to start the pods: %v", err)
			} else {
				step(1, func(ctx context.Context, blk *Block) error { return b.rowExec(ctx, blk, p) })
				step(3, func(ctx context.Context, blk *Block) error { return b.rowThroughput(ctx, blk, p) })
				step(11, func(ctx context.Context, blk *Block) error { return b.rowAPICalls(ctx, blk, p) })
				step(12, func(ctx context.Context, blk *Block) error { return b.rowReattach(ctx, blk, p) })
				p.stop(context.WithoutCancel(ctx), b)
			}
		}
	}
	if !sel(1) && !sel(3) && !sel(11) && !sel(12) { // else step notes the ones not selected
		for _, n := range []int{1, 3, 11, 12} {
			b.blocks[n].Note("not run (-only %s)", b.opt.only)
		}
	}
	step(2, b.rowColdStart)
	step(4, b.rowWarmPool)
	step(6, b.rowSessions)
	step(9, b.rowCLI)
	step(10, b.rowTracing)
	step(13, b.rowIsolation)
	step(8, b.rowRealSessions)
	if b.opt.scale {
		step(7, b.rowScale)
	} else {
		b.blocks[7].Note("not run: it needs kwok's fake nodes; make bench (hack/bench.sh) starts them on the local cluster and passes -scale")
	}

	endOthers := b.otherPods(context.WithoutCancel(ctx))
	t := b.table
	t.Header = append(t.Header, fmt.Sprintf("load:    other users' pods on the shared cluster: %d at start, %d at end; load average %s at start, %s at end (2 CPUs; others' work is noise here)",
		startOthers, endOthers, startLoad, loadAvg()))
	t.Footer = append(t.Footer,
		"percentiles: nearest rank over the samples (p99 of fewer than 100 samples is the maximum); ratio = p50 / baseline p50,",
		"  [95% CI] = bootstrap interval of that ratio (2000 resamples of both samples); PASS/MISS compares the point estimate",
		"  with the target, and \"within noise\" notes flag intervals that straddle the target.",
		fmt.Sprintf("total wall time of the program: %s", time.Since(t0).Round(time.Second)))
	switch {
	case len(b.loud) > 0:
		t.Footer = append(t.Footer, "")
		for _, l := range b.loud {
			t.Footer = append(t.Footer, "!!! "+l)
		}
		return 3
	case ctx.Err() != nil:
		t.Footer = append(t.Footer, "interrupted: rows after the interruption were not run")
		return 130
	case b.failed:
		return 1
	}
	return 0
}

func (b *bench) header(ctx context.Context) {
	kver := "?"
	if v, err := b.cs.Discovery().ServerVersion(); err == nil {
		kver = v.GitVersion
	}
	cgo := "?"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "k8s.io/client-go" {
				cgo = d.Version
			}
		}
	}
	if cgo == "?" { // go.mod is the source of truth when build info lacks it
		if m, err := os.ReadFile(filepath.Join(b.root, "go.mod")); err == nil {
			for _, l := range strings.Split(string(m), "\n") {
				if f := strings.Fields(l); len(f) >= 2 && f[0] == "k8s.io/client-go" {
					cgo = f[1]
				}
			}
		}
	}
	mode := "full"
	if b.opt.quick {
		mode = "QUICK (counts below the requirement; do not quote these figures)"
	}
	b.table.Header = []string{
		"podsandbox benchmarks (make bench)   " + time.Now().Format("2006-01-02 15:04:05 MST"),
		fmt.Sprintf("machine: %d CPUs (nproc), %s RAM, kernel %s, %s", runtime.NumCPU(), memTotal(), kernel(), osName()),
		fmt.Sprintf("cluster: Kubernetes server %s at %s (namespace %s); client-go %s; kubectl %s; %s",
			kver, b.cfg.Host, b.ns, cgo, b.kubectlVersion(ctx), runtime.Version()),
		fmt.Sprintf("run:     %s; podsandbox pods request cpu 0/memory 64Mi (limits as the library's default: 1 CPU, 768Mi; kubectl pods request nothing), so other users' pods cannot make them Unschedulable", mode),
	}
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		var kb int64
		if n, _ := fmt.Sscanf(l, "MemTotal: %d kB", &kb); n == 1 {
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return "?"
}

// loadAvg returns the 1-minute load average, or "?".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func osName() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return runtime.GOOS
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return runtime.GOOS
}

// sandboxOptions are the options every podsandbox sandbox of the bench uses (all are made from
// one Client, so the library's pod watch is shared, as in a long-running server): images
// side-loaded (pull policy Never), no CPU request (see the header): the kubectl baseline pods have
// none either, and other users' pods on the shared 2-core node must not make ours Unschedulable.
func (b *bench) sandboxOptions(mode podsandbox.Mode, extra ...podsandbox.Option) []podsandbox.Option {
	res := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("0"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("768Mi")},
	}
	return append([]podsandbox.Option{
		podsandbox.WithNamespace(b.ns),
		podsandbox.WithMode(mode),
		podsandbox.WithImagePullPolicy(corev1.PullNever),
		podsandbox.WithResources(res),
		podsandbox.WithStartupTimeout(2 * time.Minute),
		podsandbox.WithLogger(b.libLog),
	}, extra...)
}

// belowRequirement notes a count below the minimum.
func belowRequirement(blk *Block, what string, got, want int) {
	if got < want {
		blk.Note("%s is %d, below the required %d: these figures do not meet the requirement's sample size", what, got, want)
	}
}

var errInterrupted = errors.New("interrupted")
