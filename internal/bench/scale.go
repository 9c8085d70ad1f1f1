package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/podsandbox/podsandbox/internal/e2e"
	"github.com/podsandbox/podsandbox/internal/scale"
)

// rowScale is row 7: the simulated-scale scenarios on kwok's fake nodes (internal/scale), run as
// their own process (so its heap figures are its own) after every other row, so that its
// thousands of pods do not load the cluster while the latency rows run. hack/bench.sh starts
// kwok first and passes -scale. A run with problems (a pod claimed twice, a pod not reaped)
// still gives its figures: the rows show the MISS.
func (b *bench) rowScale(ctx context.Context, blk *Block) error {
	var args []string
	if b.opt.quick {
		args = append(args, "-quick")
	}
	res, err := b.runScale(ctx, 7, args...)
	if res != nil {
		scaleRows(blk, res)
	}
	return err
}

// realSessions is how many real pods row 8 starts: the proof size, which the local
// cluster's node (maxPods 250) holds beside the other rows' pods.
const realSessions = 200

// rowRealSessions is row 8: the sessions scenario of internal/scale on the cluster's real node:
// realSessions API-mode busybox pods through one Client and one SessionManager, the real-cluster
// counterpart of row 7's first block. It runs last but one, before row 7, whose kwok pods would
// otherwise share the API server with it.
func (b *bench) rowRealSessions(ctx context.Context, blk *Block) error {
	res, err := b.runScale(ctx, 8, "-real", "-only", "sessions", "-sessions", fmt.Sprint(realSessions), "-concurrency", "32",
		"-image", e2e.ImageBusybox)
	if res != nil {
		sessionRows(blk, res)
		blk.Note("API mode, busybox, requests of 1m CPU / 8Mi, %d GetOrCreate in flight; three sessions run `echo ok` after the figures are taken; Shutdown deletes the pods and the row waits until they are gone", 32)
		for _, p := range res.Problems {
			blk.Note("PROBLEM: %s", p)
		}
		blk.Note("scale program wall time %s", FormatSeconds(res.Wall))
	}
	return err
}

// runScale builds and runs internal/scale/cmd/scale with args (for row n) and returns its figures.
// A run with problems (a pod claimed twice, a pod not reaped) still gives its figures.
func (b *bench) runScale(ctx context.Context, n int, args ...string) (*scale.Result, error) {
	dir, err := os.MkdirTemp("", "bench-scale-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin, out := filepath.Join(dir, "scale"), filepath.Join(dir, "scale.json")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./internal/scale/cmd/scale")
	build.Dir, build.Stdout, build.Stderr = b.root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, errInterrupted
		}
		return nil, fmt.Errorf("building internal/scale/cmd/scale: %w", err)
	}
	args = append([]string{"-kubeconfig", b.kubeconfig, "-json", out}, args...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = b.root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr // its progress and report go with the bench's progress
	// On Ctrl-C it deletes its namespaces before it exits: interrupt it, do not kill it.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 4 * time.Minute
	b.progress("row %d: internal/scale/cmd/scale %s", n, strings.Join(args, " "))
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return nil, errInterrupted
	}
	data, err := os.ReadFile(out)
	if err != nil || len(data) == 0 {
		return nil, fmt.Errorf("the scale program wrote no figures: %v", runErr)
	}
	var res scale.Result
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, fmt.Errorf("the scale program's figures: %w", err)
	}
	if runErr != nil && len(res.Problems) == 0 {
		return &res, fmt.Errorf("internal/scale/cmd/scale: %v", runErr)
	}
	return &res, nil
}

// scaleRows adds the figures of a scale run to blk: each beside the baseline it is bound by (the
// client-side rate limit, the cold start of the same run, the minimum request count), the
// invariants with their target.
func scaleRows(blk *Block, r *scale.Result) {
	floor := func(n int) float64 { return scale.QPSFloor(n, r.QPS, r.Burst) }
	floorName := fmt.Sprintf("client QPS floor (%g/s, burst %d)", r.QPS, r.Burst)
	server := func(name string, ls []scale.ServerLatency) { serverRows(blk, name, ls) }
	coldP50, rate := sessionRows(blk, r)
	if i := r.Informer; i != nil {
		blk.Add(Row{Name: fmt.Sprintf("informer: a fresh Client's first GetOrCreate among %d pods", i.Pods), N: "1", P50: FormatSeconds(i.First),
			Baseline: "GetOrCreate p50 above " + FormatSeconds(coldP50), Ratio: ratio(i.First, coldP50)})
		blk.Add(Row{Name: "informer: heap of that Client's pod cache, per pod", N: fmt.Sprint(i.Pods),
			P50: fmt.Sprintf("%.1f KiB", float64(i.HeapDelta)/1024/float64(max(i.Pods, 1))), Baseline: "total " + scale.MiB(float64(i.HeapDelta))})
		blk.Note("informer: that first GetOrCreate's requests: %s", i.Requests.PerOp(1))
	}
	if p := r.Pool; p != nil {
		row := Row{Name: fmt.Sprintf("pool: %d warm pods over %d managers %v: fill", p.Size, p.Managers, p.Sizes), N: fmt.Sprint(p.Size),
			P50: FormatSeconds(p.Fill)}
		if rate > 0 { // three clients: the cluster's pod pipeline bounds the fill, not one client's rate limit
			base := float64(p.Size) / rate
			row.Baseline, row.Ratio = fmt.Sprintf("%d pods at the sessions' rate (%.0f/s) %s", p.Size, rate, FormatSeconds(base)), ratio(p.Fill, base)
		}
		blk.Add(row)
		blk.Add(Row{Name: fmt.Sprintf("pool: claims, %d managers at once claiming %v (GetOrCreate)", p.Managers, p.Demand), N: fmt.Sprint(p.ClaimLatency.N),
			P50: FormatSeconds(p.ClaimLatency.P50), P99: FormatSeconds(p.ClaimLatency.P99),
			Baseline: "cold GetOrCreate " + FormatSeconds(coldP50), Ratio: ratio(p.ClaimLatency.P50, coldP50)})
		blk.Add(Row{Name: "pool: claims served by a warm pod", N: fmt.Sprint(p.Claims), P50: fmt.Sprint(p.Warm),
			Target: fmt.Sprintf("= %d", p.Size), Result: Verdict(p.Warm == p.Size)})
		blk.Add(Row{Name: "pool: claims of another replica's warm pod (contended)", N: fmt.Sprint(p.Claims), P50: fmt.Sprint(p.Shared),
			Target: "> 0", Result: Verdict(p.Shared > 0)})
		blk.Add(Row{Name: "pool: pods serving two sessions (UID, sandbox-id annotation)", N: fmt.Sprint(p.Claims), P50: fmt.Sprint(p.Duplicates),
			Target: "= 0", Result: Verdict(p.Duplicates == 0 && p.Claims > 0)})
		server("pool claims", p.Server)
		blk.Note("pool: requests per warm pod while filling: %s; per claim (refills included): %s; %d claims failed, %d cold; Shutdown of the managers %s",
			p.FillRequests.PerOp(p.Size), p.ClaimRequests.PerOp(max(p.Claims, 1)), p.Failed, p.Cold, FormatSeconds(p.Shutdown))
	}
	if x := r.Reap; x != nil {
		blk.Add(Row{Name: fmt.Sprintf("reap: Reap over %d expired pods", x.Expired), N: fmt.Sprint(x.Expired), P50: FormatSeconds(x.Took),
			Baseline: floorName + " " + FormatSeconds(floor(x.Expired)), Ratio: ratio(x.Took, floor(x.Expired))})
		blk.Add(Row{Name: "reap: pods deleted", N: fmt.Sprint(x.Expired), P50: fmt.Sprint(x.Deleted),
			Target: fmt.Sprintf("= %d", x.Expired), Result: Verdict(x.Deleted == x.Expired && x.Expired > 0)})
		blk.Add(Row{Name: "reap: all pods gone (kwok finishes deletions)", P50: FormatSeconds(x.Gone)})
		server("reap", x.Server)
		blk.Note("reap: the Reaper's requests: %s", x.Requests.PerOp(1))
		if x.Err != "" {
			blk.Note("reap: error: %s", x.Err)
		}
	}
	blk.Note("%d kwok nodes (make kwok-up) on %s %s; API mode, no command runs (kwok fakes pod status, it cannot exec); each scenario's pods in its own namespace",
		r.FakeNodes, r.Server, r.Host)
	blk.Note("reap: the sessions' Client is gone (as if killed) and their pods' expires-at annotations were moved into the past (setup, not timed), as an idle timeout would")
	blk.Note("API server figures come from its /metrics (histogram deltas, p50/p99 interpolated in its buckets); they include everyone's requests: the scheduler's, kwok's (its own DELETE finishes each pod's deletion) and other users'")
	for _, p := range r.Problems {
		blk.Note("PROBLEM: %s", p)
	}
	blk.Note("scale program wall time %s", FormatSeconds(r.Wall))
}

// ratio is v/base as a table ratio, or "" without a baseline.
func ratio(v, base float64) string {
	if base <= 0 || math.IsNaN(base) || math.IsNaN(v) {
		return ""
	}
	return FormatRatio(v/base, math.NaN(), math.NaN())
}

// serverRows adds the API server's own latency of each pod verb (from its metrics).
func serverRows(blk *Block, name string, ls []scale.ServerLatency) {
	for _, l := range ls {
		blk.Add(Row{Name: fmt.Sprintf("%s: API server %s pods (its metrics)", name, l.Verb), N: fmt.Sprintf("%.0f", l.Count),
			P50: FormatSeconds(l.P50), P99: FormatSeconds(l.P99), Baseline: "mean " + FormatSeconds(l.Mean)})
	}
}

// sessionRows adds the sessions scenario's figures to blk and returns its GetOrCreate p50 and
// pods per second (0 without it), the baselines of the other scenarios.
func sessionRows(blk *Block, r *scale.Result) (coldP50, rate float64) {
	floor := func(n int) float64 { return scale.QPSFloor(n, r.QPS, r.Burst) }
	floorName := fmt.Sprintf("client QPS floor (%g/s, burst %d)", r.QPS, r.Burst)
	s := r.Sessions
	if s == nil {
		return 0, 0
	}
	coldP50, rate = s.Latency.P50, float64(s.Latency.N)/s.Wall

	wall := Row{Name: fmt.Sprintf("sessions: %d GetOrCreate, %d in flight: wall", s.N, s.Concurrency), N: fmt.Sprint(s.Latency.N),
		P50: FormatSeconds(s.Wall), Baseline: floorName + " " + FormatSeconds(floor(s.N)), Ratio: ratio(s.Wall, floor(s.N))}
	if r.Real { // the node starting real containers is the bound, not the client
		wall.Baseline, wall.Ratio = wall.Baseline+"; the node's kubelet is the bound", ""
	}
	blk.Add(wall)
	blk.Add(Row{Name: "sessions: GetOrCreate (create, scheduled, Ready by the shared watch)", N: fmt.Sprint(s.Latency.N),
		P50: FormatSeconds(s.Latency.P50), P99: FormatSeconds(s.Latency.P99)})
	per := float64(s.Requests.Total()) / float64(max(s.N, 1))
	blk.Add(Row{Name: "sessions: API requests per GetOrCreate", N: fmt.Sprint(s.N), P50: fmt.Sprintf("%.2f", per),
		Baseline: "1 POST pods (the minimum)", Ratio: ratio(per, 1)})
	peak := s.Requests.WatchPeak["pods"]
	blk.Add(Row{Name: "sessions: pod WATCH streams of the Client open at once", P50: fmt.Sprint(peak), Baseline: "1 per client and namespace",
		Target: "= 1", Result: Verdict(peak == 1)})
	perKiB := (float64(s.HeapAfter) - float64(s.HeapBefore)) / 1024 / float64(max(s.Latency.N, 1))
	blk.Add(Row{Name: "sessions: client heap per live session (sessions + pod cache)", N: fmt.Sprint(s.Latency.N),
		P50: fmt.Sprintf("%.1f KiB", perKiB), Target: "≤ 50 KiB", Result: Verdict(perKiB <= 50 && s.Latency.N > 0)})
	blk.Add(Row{Name: "sessions: namespaced pod WATCHes on the API server while it ran (its metrics)", P50: fmt.Sprintf("%+.0f", s.ServerPodWatches),
		Target: "= +1", Result: Verdict(s.ServerPodWatches == 1)})
	serverRows(blk, "sessions", s.Server)
	failed, throttled := s.Requests.Errors()
	blk.Note("sessions: requests per GetOrCreate: %s; %d non-2xx (%d throttled), API server 429s %.0f; %d GetOrCreate failed",
		s.Requests.PerOp(s.N), failed, throttled, s.Rejected, s.Failed)
	blk.Note("sessions: %d pod WATCH requests in all (a watch the server ends is started again); the API server's count is every user's",
		s.Requests.Requests["WATCH pods"])
	blk.Note("sessions: client heap %s before, %s after", scale.MiB(float64(s.HeapBefore)), scale.MiB(float64(s.HeapAfter)))
	return coldP50, rate
}
