package scale

import (
	"math"
	"slices"
	"time"
)

// Result holds every figure of a run. Times are in seconds, sizes in bytes.
type Result struct {
	Start     time.Time `json:"start"`
	Host      string    `json:"host"`
	Server    string    `json:"server_version"`
	FakeNodes int       `json:"fake_nodes"`
	// Real: the sessions ran as real pods on the cluster's own nodes (Config.Real).
	Real bool `json:"real,omitempty"`
	// QPS and Burst of each library Client (client-side rate limit).
	QPS   float32 `json:"qps"`
	Burst int     `json:"burst"`

	Sessions *SessionsResult `json:"sessions,omitempty"`
	Informer *InformerResult `json:"informer,omitempty"`
	Pool     *PoolResult     `json:"pool,omitempty"`
	Reap     *ReapResult     `json:"reap,omitempty"`

	Wall float64 `json:"wall_s"`
	// Problems lists failures and broken invariants (a pod claimed twice, a pod not reaped).
	Problems []string `json:"problems,omitempty"`
}

// Dist summarises latencies: nearest-rank percentiles and the maximum, in seconds.
type Dist struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_s"`
	P99 float64 `json:"p99_s"`
	Max float64 `json:"max_s"`
}

// SessionsResult is the sessions scenario.
type SessionsResult struct {
	N           int `json:"n"`
	Concurrency int `json:"concurrency"`
	Failed      int `json:"failed"`
	// Wall is the time from the first GetOrCreate to the last one's return.
	Wall    float64 `json:"wall_s"`
	Latency Dist    `json:"latency"`
	// Requests are the Client's requests during the scenario (its watch included).
	Requests Counts `json:"requests"`
	// ServerPodWatches is how many more namespaced pod WATCHes the API server had open once the
	// sessions ran than before their Client existed (other users' watches are noise here).
	ServerPodWatches float64         `json:"server_pod_watches"`
	Server           []ServerLatency `json:"server_latency"`
	Rejected         float64         `json:"server_429"`
	HeapBefore       uint64          `json:"heap_before"`
	HeapAfter        uint64          `json:"heap_after"`
}

// InformerResult is the informer scenario.
type InformerResult struct {
	// Pods in the namespace when the fresh Client's watch started.
	Pods int `json:"pods"`
	// First is the first GetOrCreate of the fresh Client: its watch lists every pod, then the
	// new pod is created and becomes Ready.
	First     float64 `json:"first_s"`
	HeapDelta int64   `json:"heap_delta"`
	Requests  Counts  `json:"requests"`
}

// PoolResult is the pool scenario.
type PoolResult struct {
	Size     int   `json:"size"`
	Managers int   `json:"managers"`
	Sizes    []int `json:"sizes"`
	// Demand is how many sessions each manager claims; the first claims more than it has warm.
	Demand []int `json:"demand"`
	// Fill is the time from starting the managers until every warm pod is Ready.
	Fill         float64 `json:"fill_s"`
	FillRequests Counts  `json:"fill_requests"`
	Claims       int     `json:"claims"`
	Failed       int     `json:"failed"`
	// Warm claims got a pool pod; Cold ones a new pod (the pool had none ready).
	Warm int `json:"warm"`
	Cold int `json:"cold"`
	// Shared warm claims got a pod another manager's pool started.
	Shared int `json:"shared"`
	// Duplicates are pods that serve more than one session, or whose sandbox-id annotation names
	// another session than the one that claimed it. It must be 0.
	Duplicates    int             `json:"duplicates"`
	ClaimWall     float64         `json:"claim_wall_s"`
	ClaimLatency  Dist            `json:"claim_latency"`
	ClaimRequests Counts          `json:"claim_requests"`
	Server        []ServerLatency `json:"server_latency"`
	Rejected      float64         `json:"server_429"`
	// Shutdown is the time of the managers' Shutdown (claimed and warm pods deleted), at once.
	Shutdown float64 `json:"shutdown_s"`
}

// ReapResult is the reap scenario.
type ReapResult struct {
	// Expired pods in the namespace when Reap ran.
	Expired int `json:"expired"`
	Deleted int `json:"deleted"`
	Secrets int `json:"secrets"`
	// Took is the Reap call; Gone the time from its start until no pod is left.
	Took     float64         `json:"took_s"`
	Gone     float64         `json:"gone_s"`
	Requests Counts          `json:"requests"`
	Server   []ServerLatency `json:"server_latency"`
	Rejected float64         `json:"server_429"`
	Err      string          `json:"error,omitempty"`
}

// distOf summarises durations (nearest-rank percentiles); zero durations are not samples.
func distOf(ds []time.Duration) Dist {
	var s []float64
	for _, d := range ds {
		if d > 0 {
			s = append(s, d.Seconds())
		}
	}
	if len(s) == 0 {
		return Dist{P50: math.NaN(), P99: math.NaN(), Max: math.NaN()}
	}
	slices.Sort(s)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(len(s)))) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return Dist{N: len(s), P50: rank(50), P99: rank(99), Max: s[len(s)-1]}
}
