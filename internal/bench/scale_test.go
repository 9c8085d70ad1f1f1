package main

import (
	"strings"
	"testing"

	"github.com/podsandbox/podsandbox/internal/scale"
)

func TestScaleRows(t *testing.T) {
	r := &scale.Result{Server: "v1.36.3", Host: "https://127.0.0.1:6443", FakeNodes: 10, QPS: 50, Burst: 100,
		Sessions: &scale.SessionsResult{N: 5000, Concurrency: 100, Wall: 110, ServerPodWatches: 1, Latency: scale.Dist{N: 5000, P50: 2, P99: 4, Max: 5},
			Requests: scale.Counts{Requests: map[string]int64{"POST pods": 5000, "WATCH pods": 3, "LIST pods": 1}, WatchPeak: map[string]int64{"pods": 1}},
			Server:   []scale.ServerLatency{{Verb: "POST", Count: 5000, Mean: 0.01, P50: 0.008, P99: 0.05}}},
		Informer: &scale.InformerResult{Pods: 5000, First: 3, HeapDelta: 30 << 20},
		Pool: &scale.PoolResult{Size: 500, Managers: 3, Sizes: []int{167, 167, 166}, Demand: []int{250, 125, 125}, Fill: 12, Claims: 500, Warm: 500, Shared: 80,
			ClaimLatency: scale.Dist{N: 500, P50: 0.05, P99: 0.2}},
		Reap: &scale.ReapResult{Expired: 5000, Deleted: 5000, Took: 100, Gone: 110},
	}
	blk := &Block{}
	scaleRows(blk, r)
	rows := map[string]Row{}
	for _, row := range blk.Rows {
		rows[row.Name] = row
	}
	check := func(name, field, want string) {
		t.Helper()
		row, ok := rows[name]
		if !ok {
			t.Errorf("no row %q", name)
			return
		}
		got := map[string]string{"p50": row.P50, "baseline": row.Baseline, "ratio": row.Ratio, "result": row.Result}[field]
		if got != want {
			t.Errorf("%s: %s = %q, want %q", name, field, got, want)
		}
	}
	check("sessions: 5000 GetOrCreate, 100 in flight: wall", "baseline", "client QPS floor (50/s, burst 100) 98.0 s")
	check("sessions: 5000 GetOrCreate, 100 in flight: wall", "ratio", "1.12×")
	check("sessions: API requests per GetOrCreate", "p50", "1.00")
	check("sessions: pod WATCH streams of the Client open at once", "result", "PASS")
	check("pool: pods serving two sessions (UID, sandbox-id annotation)", "result", "PASS")
	check("pool: claims served by a warm pod", "result", "PASS")
	check("pool: claims, 3 managers at once claiming [250 125 125] (GetOrCreate)", "ratio", "0.03×")
	check("pool: claims of another replica's warm pod (contended)", "p50", "80")
	check("pool: 500 warm pods over 3 managers [167 167 166]: fill", "baseline", "500 pods at the sessions' rate (45/s) 11.0 s")
	check("pool: 500 warm pods over 3 managers [167 167 166]: fill", "ratio", "1.09×")
	check("reap: pods deleted", "result", "PASS")
	check("informer: heap of that Client's pod cache, per pod", "p50", "6.1 KiB")

	r.Pool.Duplicates, r.Reap.Deleted = 1, 4999
	blk = &Block{}
	scaleRows(blk, r)
	misses := 0
	for _, row := range blk.Rows {
		if row.Result == "MISS" {
			misses++
		}
	}
	if misses != 2 {
		t.Errorf("%d MISS rows, want 2 (a pod claimed twice, a pod not reaped)", misses)
	}
	if out := (&Table{Blocks: []*Block{blk}}).String(); !strings.Contains(out, "API server POST pods") {
		t.Errorf("table lacks the API server row:\n%s", out)
	}
}
