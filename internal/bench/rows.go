package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/internal/e2e"
)

// sharedPods are the pods of rows 1 and 3: one HTTP-mode pod (server image) reached by two
// sandboxes (pod IP and pods/proxy; the second adopts the first's pod), and one API-mode pod
// (busybox) that podsandbox, bare client-go and kubectl all exec into.
type sharedPods struct {
	ip, proxy, api *podsandbox.KubernetesPodSandbox
	apiExec        *podsandbox.KubernetesPodSandbox // the API pod again, a pods/exec per call (no channels)
	agent          *podsandbox.KubernetesPodSandbox // the API pod again, through the injected agent
	agentPython    *podsandbox.KubernetesPodSandbox // a Debian python pod, API mode through the agent
}

func (b *bench) startSharedPods(ctx context.Context) (*sharedPods, error) {
	p := &sharedPods{}
	var err error
	if p.ip, err = b.client.NewSandbox(e2e.ImageServer, b.sandboxOptions(podsandbox.ModeHTTP,
		podsandbox.WithSandboxID("bench-http"), podsandbox.WithReach(podsandbox.ReachPodIP))...); err != nil {
		return nil, err
	}
	if p.proxy, err = b.client.NewSandbox(e2e.ImageServer, b.sandboxOptions(podsandbox.ModeHTTP,
		podsandbox.WithSandboxID("bench-http"), podsandbox.WithReach(podsandbox.ReachProxy))...); err != nil {
		return nil, err
	}
	if p.api, err = b.client.NewSandbox(e2e.ImageBusybox, b.sandboxOptions(podsandbox.ModeAPI,
		podsandbox.WithSandboxID("bench-api"), podsandbox.WithExecChannels(4))...); err != nil {
		return nil, err
	}
	if p.apiExec, err = b.client.NewSandbox(e2e.ImageBusybox, b.sandboxOptions(podsandbox.ModeAPI,
		podsandbox.WithSandboxID("bench-api"), podsandbox.WithExecChannels(0))...); err != nil {
		return nil, err
	}
	if p.agent, err = b.client.NewSandbox(e2e.ImageBusybox, b.sandboxOptions(podsandbox.ModeAPI,
		podsandbox.WithSandboxID("bench-api"), podsandbox.WithAgent(b.agent))...); err != nil {
		return nil, err
	}
	if p.agentPython, err = b.client.NewSandbox(e2e.ImagePython, b.sandboxOptions(podsandbox.ModeAPI,
		podsandbox.WithSandboxID("bench-api-python"), podsandbox.WithAgent(b.agent))...); err != nil {
		return nil, err
	}
	errc := make(chan error, 3)
	go func() { errc <- p.ip.Start(ctx) }()
	go func() { errc <- p.api.Start(ctx) }()
	go func() { errc <- p.agentPython.Start(ctx) }()
	err = errors.Join(<-errc, <-errc, <-errc)
	if err == nil {
		err = p.proxy.Start(ctx) // adopts the HTTP pod
	}
	if err == nil {
		err = p.apiExec.Start(ctx) // adopts the API pod
	}
	if err == nil {
		err = p.agent.Start(ctx) // adopts the API pod too
	}
	if err != nil {
		p.stop(context.WithoutCancel(ctx), b)
		return nil, err
	}
	b.progress("shared pods ready: %s (HTTP), %s (API)", p.ip.PodName(), p.api.PodName())
	return p, nil
}

func (p *sharedPods) stop(ctx context.Context, b *bench) {
	var names []string
	for _, sb := range []*podsandbox.KubernetesPodSandbox{p.ip, p.proxy, p.api, p.apiExec, p.agent, p.agentPython} {
		if sb != nil {
			_ = sb.Stop(ctx)
			names = append(names, sb.PodName())
		}
	}
	_ = b.waitPodsGone(ctx, names...)
}

// execTrue runs `true` through a sandbox and checks the exit code.
func execTrue(sb podsandbox.Sandbox) func(ctx context.Context) (float64, error) {
	return func(ctx context.Context) (float64, error) {
		t0 := time.Now()
		resp, err := sb.Execute(ctx, "true")
		d := time.Since(t0)
		if err != nil {
			return 0, err
		}
		if resp.ExitCode != 0 {
			return 0, fmt.Errorf("exit code %d: %s", resp.ExitCode, resp.Output)
		}
		return d.Seconds(), nil
	}
}

// rowExec is row 1: `true` by every transport, round-robin.
func (b *bench) rowExec(ctx context.Context, blk *Block, p *sharedPods) error {
	pod := p.api.PodName()
	timed := func(f func(ctx context.Context) error) func(ctx context.Context) (float64, error) {
		return func(ctx context.Context) (float64, error) {
			t0 := time.Now()
			err := f(ctx)
			return time.Since(t0).Seconds(), err
		}
	}
	ip := &variant{name: "HTTP by pod IP", run: execTrue(p.ip)}
	proxy := &variant{name: "HTTP by pods/proxy", run: execTrue(p.proxy)}
	agent := &variant{name: "API mode, injected agent", run: execTrue(p.agent)}
	agentPy := &variant{name: "API mode, injected agent, python image", run: execTrue(p.agentPython)}
	api := &variant{name: "API mode, exec channel", run: execTrue(p.api)}
	apiExec := &variant{name: "API mode, a pods/exec per call", run: execTrue(p.apiExec)}
	cgo := &variant{name: "client-go exec", run: timed(func(ctx context.Context) error {
		return b.clientGoExec(ctx, pod, podsandbox.ContainerName, []string{"true"}, io.Discard, io.Discard)
	})}
	kc := &variant{name: "kubectl exec", run: timed(func(ctx context.Context) error {
		return b.kubectl(ctx, nil, "exec", pod, "--", "true")
	})}
	vs := []*variant{ip, proxy, agent, agentPy, api, apiExec, cgo, kc}
	err := interleave(ctx, vs, b.opt.execWarmup, b.opt.execIters, func(i int) {
		if i%25 == 0 {
			b.progress("row 1: %d/%d iterations", i, b.opt.execIters)
		}
	})
	if err != nil {
		return err
	}

	if len(cgo.samples) > 0 {
		b.execFloor = cgo.p(50)
	}
	r, _, _, _ := compare("HTTP by pod IP (podsandbox)", ip, cgo, FormatSeconds, true)
	r.Target, r.Result = "p50 ≤ 2 ms", Verdict(ip.p(50) <= 0.002)
	blk.Add(r)
	r, _, _, _ = compare("HTTP by pods/proxy (podsandbox)", proxy, cgo, FormatSeconds, true)
	r.Target, r.Result = "p50 ≤ 5 ms", Verdict(proxy.p(50) <= 0.005)
	blk.Add(r)
	r, ratio, lo, hi := compare("API mode, injected agent (WithAgent)", agent, cgo, FormatSeconds, true)
	r.Target, r.Result = "p50 ≤ 3 ms, ≤ 0.05× client-go", Verdict(agent.p(50) <= 0.003 && ratio <= 0.05)
	blk.Add(r)
	noise(blk, "injected agent vs client-go", 0.05, lo, hi)
	r, ratio, lo, hi = compare("API mode, injected agent, Debian python image", agentPy, cgo, FormatSeconds, true)
	r.Target, r.Result = "p50 ≤ 3 ms, ≤ 0.05× client-go", Verdict(agentPy.p(50) <= 0.003 && ratio <= 0.05)
	blk.Add(r)
	noise(blk, "injected agent (python) vs client-go", 0.05, lo, hi)
	r, _, _, _ = compare("API mode, injected agent (WithAgent)", agent, ip, FormatSeconds, true)
	blk.Add(r)
	r, _, _, _ = compare("API mode, exec channel (WithExecChannels(4))", api, apiExec, FormatSeconds, true)
	blk.Add(r)
	r, ratio, lo, hi = compare("API mode, a pods/exec per call (WithExecChannels(0))", apiExec, cgo, FormatSeconds, true)
	r.Target, r.Result = "≤ 1.0× client-go", Verdict(ratio <= 1.0)
	blk.Add(r)
	noise(blk, "pods/exec per call vs client-go", 1.0, lo, hi)
	r, ratio, lo, hi = compare("API mode, a pods/exec per call (WithExecChannels(0))", apiExec, kc, FormatSeconds, true)
	r.Target, r.Result = "≤ 0.5× kubectl", Verdict(ratio <= 0.5)
	blk.Add(r)
	noise(blk, "pods/exec per call vs kubectl", 0.5, lo, hi)
	r, _, _, _ = compare("client-go exec, bare (baseline)", cgo, kc, FormatSeconds, true)
	blk.Add(r)
	r, _, _, _ = compare("kubectl exec POD -- true (baseline)", kc, nil, FormatSeconds, true)
	blk.Add(r)
	blk.Note("client-go and kubectl exec into the same busybox pod as podsandbox's pods/exec; both HTTP rows hit one server-image pod; the python row is a pod of its own (%s)", e2e.ImagePython)
	blk.Note("podsandbox runs `true` inside its wrapper script (timeout, end markers), the baselines run bare `true`; the agent and the exec channel each keep one long-lived pods/exec that carries call after call")
	b.checkErrors(blk, vs...)
	belowRequirement(blk, "iterations per variant", b.opt.execIters, minExecIters)
	return nil
}

// mismatchError is a run that ended without an error but delivered the wrong bytes.
type mismatchError struct {
	n      int64
	sum    string
	wantN  int64
	wantSh string
}

func (e *mismatchError) Error() string {
	return fmt.Sprintf("got %d bytes sha256 %.12s…, want %d bytes sha256 %.12s…", e.n, e.sum, e.wantN, e.wantSh)
}

// rowThroughput is row 3: a 100 MiB file with a known sha256, cat to a hashing writer.
func (b *bench) rowThroughput(ctx context.Context, blk *Block, p *sharedPods) error {
	size := int64(b.opt.tputMiB) << 20
	blob := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{'p', 's', 'b', 'x', '-', 'b', 'e', 'n', 'c', 'h'}).Read(blob)
	sum := sha256.Sum256(blob)
	want := hex.EncodeToString(sum[:])
	const file = "/workspace/blob.bin"
	// Upload once per pod and let the pod compute the sha256 of what it stored.
	for _, sb := range []*podsandbox.KubernetesPodSandbox{p.ip, p.api} {
		resp, err := sb.Execute(ctx, "cat > "+file+" && sha256sum "+file, podsandbox.WithStdin(bytes.NewReader(blob)),
			podsandbox.WithTimeout(5*time.Minute))
		if err != nil {
			return fmt.Errorf("upload to %s: %w", sb.PodName(), err)
		}
		if f := strings.Fields(resp.Stdout); resp.ExitCode != 0 || len(f) == 0 || f[0] != want {
			return fmt.Errorf("upload to %s: the pod's sha256sum says %q (exit %d), the data's sha256 is %s", sb.PodName(), resp.Output, resp.ExitCode, want)
		}
	}
	blob = nil
	b.progress("row 3: %d MiB file in both pods, sha256 %.16s… (computed in the pods)", b.opt.tputMiB, want)

	mib := float64(size) / (1 << 20)
	check := func(w *hashWriter, d time.Duration) (float64, error) {
		if w.n != size || w.sum() != want {
			return 0, &mismatchError{n: w.n, sum: w.sum(), wantN: size, wantSh: want}
		}
		return mib / d.Seconds(), nil
	}
	viaSandbox := func(sb podsandbox.Sandbox) func(ctx context.Context) (float64, error) {
		return func(ctx context.Context) (float64, error) {
			w := newHashWriter()
			t0 := time.Now()
			resp, err := sb.Execute(ctx, "cat "+file, podsandbox.WithStdout(w), podsandbox.WithTimeout(5*time.Minute))
			d := time.Since(t0)
			if err != nil {
				return 0, err
			}
			if resp.ExitCode != 0 {
				return 0, fmt.Errorf("exit code %d: %.200s", resp.ExitCode, resp.Stderr)
			}
			return check(w, d)
		}
	}
	ip := &variant{name: "HTTP by pod IP", run: viaSandbox(p.ip)}
	proxy := &variant{name: "HTTP by pods/proxy", run: viaSandbox(p.proxy)}
	api := &variant{name: "pods/exec, API mode", run: viaSandbox(p.api)}
	agent := &variant{name: "API mode, injected agent", run: viaSandbox(p.agent)}
	kc := &variant{name: "kubectl exec", run: func(ctx context.Context) (float64, error) {
		w := newHashWriter()
		t0 := time.Now()
		err := b.kubectl(ctx, w, "exec", p.api.PodName(), "--", "cat", file)
		d := time.Since(t0)
		if err != nil {
			return 0, err
		}
		return check(w, d)
	}}
	vs := []*variant{ip, proxy, agent, api, kc}
	err := interleave(ctx, vs, 0, b.opt.tputRuns, func(i int) {
		if i%5 == 0 {
			b.progress("row 3: %d/%d runs", i, b.opt.tputRuns)
		}
	})
	if err != nil {
		return err
	}

	targets := map[*variant]float64{ip: 3, proxy: 3, agent: 1, api: 1}
	names := map[*variant]string{ip: "HTTP by pod IP (podsandbox)", proxy: "HTTP by pods/proxy (podsandbox)",
		agent: "API mode, injected agent, WithStdout", api: "API mode, exec channel, WithStdout"}
	silent, reported, total := 0, 0, 0
	for _, v := range []*variant{ip, proxy, agent, api} {
		r, ratio, lo, hi := compare(names[v], v, kc, FormatRate, false)
		r.Target, r.Result = fmt.Sprintf("≥ %s× kubectl", sig3(targets[v])), Verdict(ratio >= targets[v])
		blk.Add(r)
		noise(blk, names[v], targets[v], lo, hi)
		s, rep := classify(v)
		silent, reported, total = silent+s, reported+rep, total+len(v.samples)+len(v.errs)
		if s > 0 {
			b.loud = append(b.loud, fmt.Sprintf("SILENT TRUNCATION/CORRUPTION: podsandbox %s delivered wrong bytes without an error in %d of %d runs (row 3)",
				v.name, s, len(v.samples)+len(v.errs)))
		}
	}
	r, _, _, _ := compare("kubectl exec -- cat (baseline)", kc, nil, FormatRate, false)
	blk.Add(r)
	blk.Add(Row{Name: "silent bytes/sha mismatches, podsandbox", N: fmt.Sprint(total), P50: fmt.Sprint(silent), Target: "= 0", Result: Verdict(silent == 0)})
	blk.Add(Row{Name: "reported errors (ErrOutputIncomplete etc.)", N: fmt.Sprint(total), P50: fmt.Sprint(reported)})
	for _, v := range vs {
		s, rep := classify(v)
		inc := 0
		for _, e := range v.errs {
			if errors.Is(e, podsandbox.ErrOutputIncomplete) {
				inc++
			}
		}
		slow := "-"
		if len(v.samples) > 0 {
			slow = FormatRate(Percentile(v.samples, 0))
		}
		blk.Note("%s: %d runs correct, %d silent mismatches, %d reported errors (%d ErrOutputIncomplete); slowest correct run %s",
			v.name, len(v.samples), s, rep, inc, slow)
	}
	b.checkErrors(blk, vs...)
	blk.Note("HTTP reads the server-image pod, pods/exec and kubectl read the busybox pod: the same file (sha256 %.16s…, checked in each pod)", want)
	blk.Note("MiB/s = %d MiB / wall time of the call; every transport streams into the same sha256 writer; p99 is not meaningful here", b.opt.tputMiB)
	belowRequirement(blk, "runs per transport", b.opt.tputRuns, minTputRuns)
	belowRequirement(blk, "MiB per run", b.opt.tputMiB, minTputMiB)
	return nil
}

// classify counts a variant's silent mismatches and its reported errors.
func classify(v *variant) (silent, reported int) {
	for _, e := range v.errs {
		var m *mismatchError
		if errors.As(e, &m) {
			silent++
		} else {
			reported++
		}
	}
	return silent, reported
}

// coldStart returns a variant's run: a fresh sandbox, Start, after (if any, not timed), `true`;
// the time of Start and `true`; then Stop and the wait for the pod to go.
func (b *bench) coldStart(key, image string, mode podsandbox.Mode, after func(context.Context, *podsandbox.KubernetesPodSandbox), extra ...podsandbox.Option) func(ctx context.Context) (float64, error) {
	n := 0
	return func(ctx context.Context) (float64, error) {
		n++
		opts := append([]podsandbox.Option{podsandbox.WithSandboxID(fmt.Sprintf("%s-%d", key, n))}, extra...)
		sb, err := b.client.NewSandbox(image, b.sandboxOptions(mode, opts...)...)
		if err != nil {
			return 0, err
		}
		t0 := time.Now()
		err = sb.Start(ctx)
		var hook time.Duration // the hook's own time is not counted
		if err == nil && after != nil {
			t1 := time.Now()
			after(ctx, sb)
			hook = time.Since(t1)
		}
		var resp *podsandbox.ExecuteResponse
		if err == nil {
			resp, err = sb.Execute(ctx, "true")
		}
		d := time.Since(t0) - hook
		cleanup := context.WithoutCancel(ctx)
		_ = sb.Stop(cleanup)
		if gerr := b.waitPodsGone(cleanup, sb.PodName()); err == nil {
			err = gerr
		}
		if err == nil && resp.ExitCode != 0 {
			err = fmt.Errorf("exit code %d", resp.ExitCode)
		}
		return d.Seconds(), err
	}
}

// rowColdStart is row 2: podsandbox Start + `true` against kubectl run + wait + exec.
func (b *bench) rowColdStart(ctx context.Context, blk *Block) error {
	seq := map[string]int{}
	next := func(k string) int { seq[k]++; return seq[k] }
	cleanup := context.WithoutCancel(ctx)

	library := func(key, image string, mode podsandbox.Mode, extra ...podsandbox.Option) func(ctx context.Context) (float64, error) {
		return b.coldStart("cold-"+key, image, mode, nil, extra...)
	}
	kubectlSeq := func(key, image string, args []string, overrides func(name string) string) func(ctx context.Context) (float64, error) {
		return func(ctx context.Context) (float64, error) {
			name := fmt.Sprintf("kc-%s-%d", key, next(key))
			run := []string{"run", name, "--image=" + image, "--image-pull-policy=Never", "--restart=Never",
				"--override-type=strategic", "--overrides=" + overrides(name)}
			t0 := time.Now()
			err := b.kubectl(ctx, nil, append(run, args...)...)
			if err == nil {
				err = b.kubectl(ctx, nil, "wait", "--for=condition=Ready", "pod/"+name, "--timeout=120s")
			}
			if err == nil {
				err = b.kubectl(ctx, nil, "exec", name, "--", "true")
			}
			d := time.Since(t0)
			if derr := b.deletePod(cleanup, name); err == nil {
				err = derr
			}
			return d.Seconds(), err
		}
	}
	plain := func(string) string { return `{"apiVersion":"v1","spec":{"terminationGracePeriodSeconds":1}}` }
	probed := func(name string) string {
		o := map[string]any{"apiVersion": "v1", "spec": map[string]any{
			"terminationGracePeriodSeconds": 1,
			"containers": []any{map[string]any{"name": name, "readinessProbe": map[string]any{
				"httpGet":             map[string]any{"path": "/health", "port": 8080},
				"initialDelaySeconds": 1, "periodSeconds": 2,
			}}},
		}}
		j, _ := json.Marshal(o)
		return string(j)
	}

	api := &variant{name: "API mode, busybox", run: library("api", e2e.ImageBusybox, podsandbox.ModeAPI)}
	kcBusy := &variant{name: "kubectl run+wait+exec (busybox)",
		run: kubectlSeq("busybox", e2e.ImageBusybox, []string{"--command", "--", "sleep", "3600"}, plain)}
	http := &variant{name: "HTTP mode by pod IP, server image", run: library("http", e2e.ImageServer, podsandbox.ModeHTTP, podsandbox.WithReach(podsandbox.ReachPodIP))}
	kcSrv := &variant{name: "kubectl run+wait+exec (server, probe)",
		run: kubectlSeq("server", e2e.ImageServer, []string{"--env=SANDBOX_EXEC_TOKEN=bench", "--port=8080"}, probed)}
	vs := []*variant{api, kcBusy, http, kcSrv}
	err := interleave(ctx, vs, b.opt.startWarm, b.opt.startRuns, func(i int) {
		b.progress("row 2: %d/%d rounds", i, b.opt.startRuns)
	})
	if err != nil {
		return err
	}
	b.cold["api"], b.cold["http"] = api, http

	r, ratio, lo, hi := compare("API mode, busybox (podsandbox)", api, kcBusy, FormatSeconds, true)
	r.Target, r.Result = "≤ 0.75× kubectl", Verdict(ratio <= 0.75)
	blk.Add(r)
	noise(blk, "API mode cold start", 0.75, lo, hi)
	r, ratio, lo, hi = compare("HTTP mode by pod IP, server image (podsandbox)", http, kcSrv, FormatSeconds, true)
	r.Target, r.Result = "≤ 0.3× kubectl", Verdict(ratio <= 0.3)
	blk.Add(r)
	noise(blk, "HTTP mode cold start", 0.3, lo, hi)
	r, _, _, _ = compare("kubectl run + wait Ready + exec true, busybox (baseline)", kcBusy, nil, FormatSeconds, true)
	blk.Add(r)
	r, _, _, _ = compare("kubectl run + wait Ready + exec true, server + probe (baseline)", kcSrv, nil, FormatSeconds, true)
	blk.Add(r)
	blk.Note("kubectl pods: imagePullPolicy Never, terminationGracePeriodSeconds 1; the server pod has upstream's probe (httpGet /health :8080, initialDelaySeconds 1, periodSeconds 2)")
	blk.Note("each pod is deleted and gone before the next run (not timed); %d unrecorded warm-up round(s)", b.opt.startWarm)
	b.checkErrors(blk, vs...)
	belowRequirement(blk, "runs per variant", b.opt.startRuns, minStartRuns)
	return nil
}

// rowWarmPool is row 4: claim from a full warm pool, then `true`.
func (b *bench) rowWarmPool(ctx context.Context, blk *Block) error {
	type poolMode struct {
		key, name, image string
		mode             podsandbox.Mode
		extra            []podsandbox.Option
	}
	modes := []poolMode{
		{"http", "HTTP mode by pod IP, server image", e2e.ImageServer, podsandbox.ModeHTTP, []podsandbox.Option{podsandbox.WithReach(podsandbox.ReachPodIP)}},
		{"api", "API mode, busybox", e2e.ImageBusybox, podsandbox.ModeAPI, nil},
		{"agent", "API mode with the agent, busybox", e2e.ImageBusybox, podsandbox.ModeAPI, []podsandbox.Option{podsandbox.WithAgent(b.agent)}},
	}
	cleanup := context.WithoutCancel(ctx)
	for _, m := range modes {
		factory, err := b.client.Factory(m.image, b.sandboxOptions(m.mode, m.extra...)...)
		if err != nil {
			return err
		}
		mgr, err := podsandbox.NewSessionManager(factory, podsandbox.WithWarmPool(b.opt.poolSize, podsandbox.WithPoolName("bench-"+m.key)),
			podsandbox.WithManagerLogger(b.libLog))
		if err != nil {
			return err
		}
		if err := mgr.Start(ctx); err != nil {
			return err
		}
		pool := mgr.Pool()
		v := &variant{name: "warm " + m.key}
		var claims, execs []float64 // the two parts of each sample
		var prev string
		for i := range b.opt.poolClaims + 1 { // the first claim is a warm-up
			err := poll(ctx, 3*time.Minute, 20*time.Millisecond, func() (bool, error) { return pool.Ready() == b.opt.poolSize, nil })
			if err == nil && prev != "" {
				err = b.waitPodsGone(ctx, prev)
			}
			if err != nil {
				_, _ = mgr.Shutdown(cleanup)
				if ctx.Err() != nil {
					return errInterrupted
				}
				return fmt.Errorf("%s pool did not fill (%d of %d ready): %w", m.key, pool.Ready(), b.opt.poolSize, err)
			}
			t0 := time.Now()
			sb, err := pool.Claim(ctx, fmt.Sprintf("warm-%s-%d", m.key, i), nil)
			dClaim := time.Since(t0)
			var resp *podsandbox.ExecuteResponse
			if err == nil {
				resp, err = sb.Execute(ctx, "true")
			}
			d := time.Since(t0)
			if err == nil && resp.ExitCode != 0 {
				err = fmt.Errorf("exit code %d", resp.ExitCode)
			}
			if sb != nil {
				prev = sb.PodName()
				_ = sb.Stop(cleanup)
			}
			switch {
			case i == 0:
			case err != nil:
				v.errs = append(v.errs, err)
			default:
				v.samples = append(v.samples, d.Seconds())
				claims = append(claims, dClaim.Seconds())
				execs = append(execs, (d - dClaim).Seconds())
			}
		}
		_, _ = mgr.Shutdown(cleanup)
		_ = poll(cleanup, 2*time.Minute, 200*time.Millisecond, func() (bool, error) {
			l, err := b.cs.CoreV1().Pods(b.ns).List(cleanup, metav1.ListOptions{LabelSelector: podsandbox.LabelPool + "=bench-" + m.key})
			return err == nil && len(l.Items) == 0, nil
		})
		b.progress("row 4: %s pool done", m.key)

		var cold *variant
		coldKey := m.key
		if m.key == "agent" {
			coldKey = "api"
		}
		if c, ok := b.cold[coldKey]; ok {
			cold = &variant{name: "cold start (row 2)", samples: c.samples}
		}
		r, _, _, _ := compare(m.name+": Claim + true", v, cold, FormatSeconds, true)
		if cold == nil {
			r.Baseline = "cold start: row 2 not run"
		}
		r.Target = "p50 ≤ 25 ms, p99 ≤ 100 ms"
		if len(v.samples) > 0 {
			r.Result = Verdict(v.p(50) <= 0.025 && v.p(99) <= 0.1)
		}
		blk.Add(r)
		if len(claims) > 0 {
			blk.Note("%s: p50 of the parts: pool.Claim %s, then Execute(`true`) %s (p99 %s and %s)", m.key,
				FormatSeconds(Percentile(claims, 50)), FormatSeconds(Percentile(execs, 50)),
				FormatSeconds(Percentile(claims, 99)), FormatSeconds(Percentile(execs, 99)))
		}
		if m.mode == podsandbox.ModeAPI && b.execFloor > 0.025 {
			blk.Note("api: its Execute is one pods/exec; a bare client-go exec of `true` alone took %s (p50, row 1), above the 25 ms target",
				FormatSeconds(b.execFloor))
		}
		b.checkErrors(blk, v)
	}
	blk.Note("the pool is refilled and the previous claimed pod gone before each claim (not timed); one unrecorded warm-up claim per mode; the pool starts a claimed pod's replacement 1 s after the claim (WithPoolRefillDelay, the default), so the measured claim and command do not share the machine with a pod start")
	return nil
}

// rowSessions is row 6: many sessions at once through one SessionManager.
func (b *bench) rowSessions(ctx context.Context, blk *Block) error {
	n := b.opt.sessions
	factory, err := b.client.Factory(e2e.ImageServer, b.sandboxOptions(podsandbox.ModeHTTP, podsandbox.WithReach(podsandbox.ReachPodIP))...)
	if err != nil {
		return err
	}
	mgr, err := podsandbox.NewSessionManager(factory, podsandbox.WithManagerLogger(b.libLog))
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	v := &variant{name: "sessions"}
	var mu sync.Mutex
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range n {
		wg.Go(func() {
			sb, err := mgr.GetOrCreate(rctx, fmt.Sprintf("bench-session-%02d", i))
			var resp *podsandbox.ExecuteResponse
			if err == nil {
				resp, err = sb.Execute(rctx, "true")
			}
			if err == nil && resp.ExitCode != 0 {
				err = fmt.Errorf("exit code %d", resp.ExitCode)
			}
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				v.errs = append(v.errs, err)
			} else {
				v.samples = append(v.samples, d.Seconds())
			}
		})
	}
	wg.Wait()
	wall := time.Since(t0)
	cleanup := context.WithoutCancel(ctx)
	if _, err := mgr.Shutdown(cleanup); err != nil {
		blk.Note("Shutdown: %v", err)
	}
	_ = poll(cleanup, 3*time.Minute, 250*time.Millisecond, func() (bool, error) {
		l, err := b.cs.CoreV1().Pods(b.ns).List(cleanup, metav1.ListOptions{LabelSelector: podsandbox.LabelManagedBy + "=" + podsandbox.ManagedByValue})
		return err == nil && len(l.Items) == 0, nil
	})
	if ctx.Err() != nil {
		return errInterrupted
	}

	r, _, _, _ := compare("each session: GetOrCreate + true done, from t0", v, nil, FormatSeconds, true)
	blk.Add(r)
	ok := len(v.samples) == n && wall <= sessionsLimit
	blk.Add(Row{Name: fmt.Sprintf("all %d usable: wall time", n), N: fmt.Sprintf("%d/%d usable", len(v.samples), n),
		P50: FormatSeconds(wall.Seconds()), Target: "all usable ≤ 15 s", Result: Verdict(ok)})
	blk.Note("the wall-time row's figure is the single wall time (start of the first GetOrCreate to the last `true` done)")
	b.checkErrors(blk, v)
	belowRequirement(blk, "sessions", n, minSessions)
	return nil
}

// rowGoBench is row 5: the in-memory benchmarks, run by hack/bench.sh with go test -bench.
func (b *bench) rowGoBench(_ context.Context, blk *Block) error {
	if b.opt.gobench == "" {
		return errors.New("no -gobench file: hack/bench.sh runs `go test -bench` and passes its output")
	}
	f, err := os.Open(b.opt.gobench)
	if err != nil {
		return err
	}
	defer f.Close()
	res, err := ParseGoBench(f)
	if err != nil {
		return err
	}
	for _, bm := range []struct {
		name   string
		target float64 // seconds
		label  string
	}{
		{"BenchmarkGetOrCreateLive", 10e-6, "p50 ≤ 10 µs"},
		{"BenchmarkCleanupSweep10k", 5e-3, "p50 ≤ 5 ms"},
	} {
		ns := res[bm.name]
		if len(ns) == 0 {
			blk.Add(Row{Name: bm.name, N: "0", Target: bm.label, Result: "MISS"})
			blk.Note("%s: no result in %s", bm.name, b.opt.gobench)
			b.failed = true
			continue
		}
		v := &variant{name: bm.name}
		for _, x := range ns {
			v.samples = append(v.samples, x*1e-9)
		}
		r, _, _, _ := compare(bm.name+" (per op)", v, nil, FormatSeconds, true)
		r.N = fmt.Sprintf("%d runs", len(ns))
		r.Target, r.Result = bm.label, Verdict(v.p(50) <= bm.target)
		blk.Add(r)
	}
	if b.opt.gobenchCmd != "" {
		blk.Note("%s (one sample per -count run; no baseline)", b.opt.gobenchCmd)
	}
	return nil
}

// checkErrors notes the variants' failures; a variant with more than 10% failed runs (or none
// correct) makes the program exit non-zero, after printing the table.
func (b *bench) checkErrors(blk *Block, vs ...*variant) {
	for _, v := range vs {
		row, _, _ := strings.Cut(blk.Title, ".")
		b.raw = append(b.raw, fmt.Sprintf("row %s\t%s\t%d failed\t%v", row, v.name, len(v.errs), v.samples))
		if !firstErrors(blk, v) {
			b.failed = true
			blk.Note("%s: too many failed runs (%d of %d): this row's figures are not usable", v.name, len(v.errs), len(v.errs)+len(v.samples))
		}
	}
}
