package scale

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestQPSFloor(t *testing.T) {
	if got := QPSFloor(5000, 50, 100); got != 98 {
		t.Errorf("QPSFloor(5000, 50, 100) = %v, want 98", got)
	}
	if got := QPSFloor(50, 50, 100); got != 0 {
		t.Errorf("within the burst: %v, want 0", got)
	}
	if !math.IsNaN(QPSFloor(10, 0, 0)) {
		t.Error("no rate limit has a floor")
	}
}

func TestSeconds(t *testing.T) {
	for s, want := range map[float64]string{123.4: "123 s", 12.34: "12.3 s", 1.234: "1.23 s", 0.1234: "123 ms",
		0.01234: "12.3 ms", 0.001234: "1.23 ms", math.NaN(): "-"} {
		if got := Seconds(s); got != want {
			t.Errorf("Seconds(%v) = %q, want %q", s, got, want)
		}
	}
}

func TestDistOf(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 200; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	ds = append(ds, 0) // a failed call: not a sample
	d := distOf(ds)
	if d.N != 200 || d.P50 != 0.1 || d.P99 != 0.198 || d.Max != 0.2 {
		t.Errorf("distOf = %+v", d)
	}
	if e := distOf(nil); e.N != 0 || !math.IsNaN(e.P50) {
		t.Errorf("distOf(nil) = %+v", e)
	}
}

func TestSplit(t *testing.T) {
	for _, tt := range []struct {
		total, n int
		want     string
	}{{500, 3, "[167 167 166]"}, {20, 3, "[7 7 6]"}, {2, 3, "[1 1 0]"}, {9, 1, "[9]"}} {
		if got := fmt.Sprint(split(tt.total, tt.n)); got != tt.want {
			t.Errorf("split(%d, %d) = %s, want %s", tt.total, tt.n, got, tt.want)
		}
	}
}

func TestParallelBoundsConcurrency(t *testing.T) {
	var running, peak, calls atomic.Int64
	parallel(context.Background(), 100, 7, func(int) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		running.Add(-1)
		calls.Add(1)
	})
	if calls.Load() != 100 || peak.Load() > 7 {
		t.Errorf("%d calls, peak %d in flight; want 100 calls, at most 7", calls.Load(), peak.Load())
	}

	ctx, cancel := context.WithCancel(context.Background())
	calls.Store(0)
	parallel(ctx, 100, 1, func(i int) {
		if calls.Add(1) == 5 {
			cancel()
		}
	})
	if n := calls.Load(); n != 5 {
		t.Errorf("%d calls after cancel at the 5th, want 5", n)
	}
}

func TestLines(t *testing.T) {
	r := &Result{Server: "v1.36.3", Host: "https://127.0.0.1:6443", FakeNodes: 10, QPS: 50, Burst: 100,
		Sessions: &SessionsResult{N: 10, Concurrency: 2, Wall: 1, Latency: Dist{N: 10, P50: 0.1, P99: 0.2, Max: 0.2},
			Requests: Counts{Requests: map[string]int64{"POST pods": 10}}},
		Pool:     &PoolResult{Size: 6, Managers: 3, Sizes: []int{2, 2, 2}, Demand: []int{3, 2, 1}, Claims: 6, Warm: 6, Shared: 1},
		Problems: []string{"something"}}
	out := strings.Join(r.Lines(), "\n")
	for _, want := range []string{"sessions: 10 GetOrCreate", "1.00 POST pods", "claims: 6 at once by managers claiming [3 2 1] (6 warm, 1 of them another replica's; 0 cold", "PROBLEM: something"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
