package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/internal/faultproxy"
)

// rowReattach is row 12: Execute WithReattach. First its cost on `true` against a plain Execute on
// the same pod (HTTP by pod IP, API through the agent, API with a pods/exec per call). Then the
// drill: on each transport that goes through the API server (API mode with a pods/exec per call,
// HTTP by pods/proxy), b.opt.drops calls of a command writing 1 MiB in two halves, each call's
// API-server connections cut through a loopback proxy once its first bytes arrived; every result
// is checked byte for byte, and every run of the command is counted in the pod.
func (b *bench) rowReattach(ctx context.Context, blk *Block, p *sharedPods) error {
	iters := max(b.opt.execIters/5, 10)
	type pair struct {
		name string
		sb   *podsandbox.KubernetesPodSandbox
		// http: the target is a ratio of 1.10; else one extra round trip (2× the plain call).
		http bool
	}
	pairs := []pair{{"HTTP by pod IP", p.ip, true}, {"API, agent", p.agent, false}, {"API, a pods/exec per call", p.apiExec, false}}
	var vs []*variant
	for _, pr := range pairs {
		for _, reattach := range []bool{false, true} {
			var opts []podsandbox.ExecOption
			name := pr.name + ": Execute"
			if reattach {
				opts = append(opts, podsandbox.WithReattach())
				name += " WithReattach"
			}
			vs = append(vs, &variant{name: name, run: func(ctx context.Context) (float64, error) {
				t0 := time.Now()
				r, err := pr.sb.Execute(ctx, "true", opts...)
				if err == nil && r.ExitCode != 0 {
					err = fmt.Errorf("exit %d", r.ExitCode)
				}
				return time.Since(t0).Seconds(), err
			}})
		}
	}
	if err := interleave(ctx, vs, 2, iters, nil); err != nil {
		return err
	}
	for i, pr := range pairs {
		plain, re := vs[2*i], vs[2*i+1]
		r, ratio, lo, hi := compare(re.name, re, plain, FormatSeconds, true)
		if pr.http {
			r.Target = "≤ 1.10× a plain Execute"
			r.Result = Verdict(ratio <= 1.10)
			noise(blk, re.name, 1.10, lo, hi)
		} else {
			r.Target = "≤ 1 extra round trip (≤ 2×)"
			r.Result = Verdict(ratio <= 2)
			noise(blk, re.name, 2, lo, hi)
		}
		blk.Add(r)
		firstErrors(blk, plain)
		firstErrors(blk, re)
	}
	blk.Note("HTTP mode and the agent: a call WithReattach is one streaming request, as a plain Execute, with the in-pod server recording the command as it runs (the record's end is written after the response); a pods/exec per call: one call of the transport for a short command (it starts the supervisor, waits in the pod for the output and the exit; the record expires 2 minutes after the end), more for a long one")

	return b.reattachDrops(ctx, blk, p)
}

// reattachDrops is row 12's drill (see rowReattach).
func (b *bench) reattachDrops(ctx context.Context, blk *Block, p *sharedPods) error {
	u, err := url.Parse(b.cfg.Host)
	if err != nil {
		return err
	}
	blob := make([]byte, 1<<20)
	_, _ = rand.Read(blob)
	want := sha256.Sum256(blob)
	const file = "/tmp/bench-reattach.bin"
	for _, sb := range []*podsandbox.KubernetesPodSandbox{p.ip, p.apiExec} {
		if _, err := sb.Write(ctx, file, blob); err != nil {
			return err
		}
	}
	targets := []struct {
		name string
		mode podsandbox.Mode
		id   string
		opts []podsandbox.Option
	}{
		{"API, a pods/exec per call", podsandbox.ModeAPI, p.apiExec.ID(), nil},
		{"HTTP by pods/proxy", podsandbox.ModeHTTP, p.ip.ID(), []podsandbox.Option{podsandbox.WithReach(podsandbox.ReachProxy)}},
	}
	for _, tg := range targets {
		proxy, err := faultproxy.Start(u.Host)
		if err != nil {
			return err
		}
		cfg := rest.CopyConfig(b.cfg)
		cfg.Host = "https://" + proxy.Addr()
		c, err := podsandbox.NewClient(cfg, podsandbox.WithClientLogger(b.libLog))
		if err != nil {
			_ = proxy.Close()
			return err
		}
		err = b.dropRuns(ctx, blk, tg.name, c, proxy, tg.id, tg.opts, file, want)
		_ = c.Close(context.WithoutCancel(ctx))
		_ = proxy.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// dropRuns runs the drill on one transport: sandbox id attached through c, whose connections go
// through proxy.
func (b *bench) dropRuns(ctx context.Context, blk *Block, name string, c *podsandbox.Client, proxy *faultproxy.Proxy,
	id string, opts []podsandbox.Option, file string, want [32]byte) error {
	sb, err := c.Attach(ctx, b.ns, id, opts...)
	if err != nil {
		return err
	}
	defer sb.Stop(context.WithoutCancel(ctx)) //nolint:errcheck // detach only
	runs := fmt.Sprintf("/tmp/bench-reattach-runs-%d", time.Now().UnixNano())
	cmd := `echo "$I" >> "$RUNS"; head -c 524288 "$F"; sleep 0.3; tail -c +524289 "$F"`
	n := b.opt.drops
	var complete, cutCalls int
	var bad []string
	dropped := &variant{name: name + ": 1 MiB, connections cut mid-output"}
	clean := &variant{name: name + ": 1 MiB, no cut"}
	for i := range n + n/5 {
		if ctx.Err() != nil {
			return errInterrupted
		}
		cut := i < n // the first n calls are cut, then n/5 run clean as the baseline
		var once sync.Once
		arrived := make(chan struct{})
		first := writerFunc(func(b []byte) (int, error) {
			once.Do(func() { close(arrived) })
			return len(b), nil
		})
		done := make(chan struct{})
		var r *podsandbox.ExecuteResponse
		var err error
		t0 := time.Now()
		go func() {
			defer close(done)
			r, err = sb.Execute(ctx, cmd, podsandbox.WithReattach(), podsandbox.WithOutputLimit(2<<20), podsandbox.WithStdout(first),
				podsandbox.WithExecEnv(map[string]string{"I": strconv.Itoa(i), "RUNS": runs, "F": file}), podsandbox.WithTimeout(2*time.Minute))
		}()
		cutHere := false
		if cut {
			select {
			case <-arrived:
				// Cut once a connection is open: between two reads of a pods/exec per call there
				// may be none for a moment.
			poll:
				for {
					if proxy.Cut() > 0 {
						cutHere = true
						cutCalls++
						break
					}
					select {
					case <-done:
						break poll
					case <-time.After(10 * time.Millisecond):
					}
				}
			case <-done:
			}
		}
		<-done
		el := time.Since(t0).Seconds()
		v := clean
		if cut {
			v = dropped
		}
		if cut && !cutHere {
			v = &variant{} // finished before any connection could be cut: neither figure
		}
		switch {
		case err != nil:
			v.errs = append(v.errs, err)
		case sha256.Sum256([]byte(r.Stdout)) != want || r.ExitCode != 0 || r.Truncated:
			v.errs = append(v.errs, fmt.Errorf("call %d: %d bytes, exit %d, truncated %v: not the file's bytes", i, len(r.Stdout), r.ExitCode, r.Truncated))
		default:
			v.samples = append(v.samples, el)
			if cutHere {
				complete++
			}
		}
		if (i+1)%20 == 0 {
			b.progress("row 12: %s: %d/%d calls", name, i+1, n+n/5)
		}
	}
	out, err := sb.Execute(ctx, `cat "$RUNS"; rm -f "$RUNS"`, podsandbox.WithExecEnv(map[string]string{"RUNS": runs}), podsandbox.WithOutputLimit(1<<20))
	if err != nil {
		return err
	}
	seen := map[string]int{}
	for _, l := range strings.Fields(out.Stdout) {
		seen[l]++
	}
	twice := 0
	for k, c := range seen {
		if c > 1 {
			twice++
			bad = append(bad, k)
		}
	}
	r, _, _, _ := compare(dropped.name, dropped, clean, FormatSeconds, true)
	blk.Add(r)
	blk.Add(Row{Name: "  complete and byte-identical, of the calls cut", N: strconv.Itoa(cutCalls), P50: fmt.Sprintf("%d/%d", complete, cutCalls),
		Target: fmt.Sprintf("%d/%d", cutCalls, cutCalls), Result: Verdict(complete == cutCalls && cutCalls*10 >= n*9)})
	blk.Add(Row{Name: "  commands run twice", N: strconv.Itoa(n + n/5), P50: strconv.Itoa(twice), Target: "0", Result: Verdict(twice == 0 && len(seen) == n+n/5)})
	if len(dropped.samples) > 0 && len(clean.samples) > 0 {
		blk.Add(Row{Name: "  median extra latency of a re-attach", P50: FormatSeconds(dropped.p(50) - clean.p(50)),
			Baseline: "no cut " + FormatSeconds(clean.p(50))})
	}
	blk.Note("%s: %d of %d calls had connections cut after their first bytes arrived (at least 90%% must, for a PASS); %d distinct runs recorded for %d calls%s",
		name, cutCalls, n, len(seen), n+n/5, map[bool]string{true: "", false: fmt.Sprintf(" (run twice: %v)", bad)}[len(bad) == 0])
	firstErrors(blk, dropped)
	firstErrors(blk, clean)
	return nil
}

// writerFunc is an io.Writer from a function.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
