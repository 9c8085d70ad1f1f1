package scale

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// QPSFloor is the least time n requests can take through a client-side rate limit of qps: the
// baseline of the scenarios that are bound by it (creating, claiming, deleting pods).
func QPSFloor(n int, qps float32, burst int) float64 {
	if qps <= 0 {
		return math.NaN()
	}
	return math.Max(float64(n-burst), 0) / float64(qps)
}

// MiB formats bytes as MiB.
func MiB(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

// Seconds formats seconds with three significant digits in s or ms.
func Seconds(s float64) string {
	switch a := math.Abs(s); {
	case math.IsNaN(s):
		return "-"
	case a >= 100:
		return fmt.Sprintf("%.0f s", s)
	case a >= 10:
		return fmt.Sprintf("%.1f s", s)
	case a >= 1:
		return fmt.Sprintf("%.2f s", s)
	case a >= 0.1:
		return fmt.Sprintf("%.0f ms", s*1e3)
	case a >= 0.01:
		return fmt.Sprintf("%.1f ms", s*1e3)
	default:
		return fmt.Sprintf("%.2f ms", s*1e3)
	}
}

// ServerString formats the API server's latencies: "POST 1200× mean 12.0 ms p50 8.1 ms p99 41 ms".
func ServerString(ls []ServerLatency) string {
	if len(ls) == 0 {
		return "no pod requests seen"
	}
	var parts []string
	for _, l := range ls {
		parts = append(parts, fmt.Sprintf("%s %.0f× mean %s p50 %s p99 %s", l.Verb, l.Count, Seconds(l.Mean), Seconds(l.P50), Seconds(l.P99)))
	}
	return strings.Join(parts, "; ")
}

// Lines is a plain-text report of the run, one figure a line.
func (r *Result) Lines() []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if r.Real {
		add("scale (real pods on the cluster's own nodes): %s at %s; library clients at %g QPS, burst %d; %s",
			r.Server, r.Host, r.QPS, r.Burst, r.Start.Format(time.DateTime))
	} else {
		add("scale (simulated): %s at %s, %d Ready kwok nodes; library clients at %g QPS, burst %d; %s",
			r.Server, r.Host, r.FakeNodes, r.QPS, r.Burst, r.Start.Format(time.DateTime))
	}
	if s := r.Sessions; s != nil {
		add("sessions: %d GetOrCreate (%d at a time) in %s = %.0f/s (client QPS floor %s); p50 %s, p99 %s, max %s; %d failed",
			s.N, s.Concurrency, Seconds(s.Wall), float64(s.Latency.N)/s.Wall, Seconds(QPSFloor(s.N, r.QPS, r.Burst)),
			Seconds(s.Latency.P50), Seconds(s.Latency.P99), Seconds(s.Latency.Max), s.Failed)
		failed, throttled := s.Requests.Errors()
		add("  requests per session: %s (%d non-2xx, %d throttled; API server 429s %.0f)", s.Requests.PerOp(s.N), failed, throttled, s.Rejected)
		add("  pod WATCH streams of the Client open at once: %d (one per client and namespace expected; %d WATCH requests in all); on the API server %+.0f while it ran (every user's)",
			s.Requests.WatchPeak["pods"], s.Requests.Requests["WATCH pods"], s.ServerPodWatches)
		add("  client heap: %s before, %s after (%.1f KiB per session: sessions + pod cache)",
			MiB(float64(s.HeapBefore)), MiB(float64(s.HeapAfter)), (float64(s.HeapAfter)-float64(s.HeapBefore))/1024/float64(max(s.Latency.N, 1)))
		add("  API server: %s", ServerString(s.Server))
	}
	if i := r.Informer; i != nil {
		add("informer: a fresh Client's first GetOrCreate among %d pods: %s, heap %+.1f MiB (%.1f KiB per pod); requests: %s",
			i.Pods, Seconds(i.First), float64(i.HeapDelta)/(1<<20), float64(i.HeapDelta)/1024/float64(max(i.Pods, 1)), i.Requests.PerOp(1))
	}
	if p := r.Pool; p != nil {
		add("pool: %d warm pods over %d managers %v filled in %s = %.0f/s; requests per warm pod: %s",
			p.Size, p.Managers, p.Sizes, Seconds(p.Fill), float64(p.Size)/p.Fill, p.FillRequests.PerOp(p.Size))
		add("  claims: %d at once by managers claiming %v (%d warm, %d of them another replica's; %d cold, %d failed) in %s; p50 %s, p99 %s; duplicates %d (must be 0)",
			p.Claims, p.Demand, p.Warm, p.Shared, p.Cold, p.Failed, Seconds(p.ClaimWall), Seconds(p.ClaimLatency.P50), Seconds(p.ClaimLatency.P99), p.Duplicates)
		add("  requests per claim (refills included; 409 = a race lost to another replica): %s", p.ClaimRequests.PerOp(max(p.Claims, 1)))
		add("  API server during the claims: %s; Shutdown of the managers %s", ServerString(p.Server), Seconds(p.Shutdown))
	}
	if x := r.Reap; x != nil {
		add("reap: %d expired pods; Reap deleted %d in %s (client QPS floor %s), all gone after %s; requests: %s",
			x.Expired, x.Deleted, Seconds(x.Took), Seconds(QPSFloor(x.Expired, r.QPS, r.Burst)), Seconds(x.Gone), x.Requests.PerOp(1))
		add("  API server: %s", ServerString(x.Server))
		if x.Err != "" {
			add("  error: %s", x.Err)
		}
	}
	add("total %s", Seconds(r.Wall))
	for _, p := range r.Problems {
		add("PROBLEM: %s", p)
	}
	return out
}
