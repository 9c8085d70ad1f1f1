//go:build e2e

package scale_test

import (
	"context"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/podsandbox/podsandbox/internal/e2e"
	"github.com/podsandbox/podsandbox/internal/scale"
)

func TestMain(m *testing.M) { e2e.Main(m) }

// TestScenariosSmall runs every scale scenario at a small size on kwok's fake nodes (hack/test.sh
// starts them; with none the run fails and says `make kwok-up`), so that make test proves the
// code paths make bench measures at full size.
func TestScenariosSmall(t *testing.T) {
	env := e2e.Env(t)
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 0, 0 // the library's default rate limit, as in make bench
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	const sessions, pool = 50, 20
	res, err := scale.Run(ctx, scale.Config{
		REST: cfg, Image: e2e.ImageBusybox,
		Sessions: sessions, Concurrency: 16, PoolSize: pool, Managers: 3,
		NamespaceLabels: map[string]string{e2e.LabelE2E: "true", e2e.LabelRun: env.RunID},
		Logf:            t.Logf,
	})
	if res != nil {
		for _, l := range res.Lines() {
			t.Log(l)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Problems {
		t.Errorf("problem: %s", p)
	}

	s := res.Sessions
	if s == nil || s.Latency.N != sessions || s.Failed != 0 {
		t.Fatalf("sessions: %+v, want %d ready", s, sessions)
	}
	if got := s.Requests.Requests["POST pods"]; got != sessions {
		t.Errorf("sessions: %d POST pods for %d sessions, want one each", got, sessions)
	}
	if got := s.Requests.WatchPeak["pods"]; got != 1 {
		t.Errorf("sessions: %d pod WATCH streams open at once, want 1 (one shared watch per client and namespace); requests: %v", got, s.Requests.Requests)
	}
	// per session: the NetworkPolicy's POST, the pod's POST, the policy's owner PATCH; the watch
	if total := s.Requests.Total(); total > 3*sessions+5 {
		t.Errorf("sessions: %d requests for %d sessions: %s", total, sessions, s.Requests.PerOp(sessions))
	}

	if i := res.Informer; i == nil || i.Pods < sessions || i.First <= 0 {
		t.Errorf("informer: %+v, want a first GetOrCreate among at least %d pods", i, sessions)
	}

	p := res.Pool
	if p == nil {
		t.Fatal("pool: no result")
	}
	if p.Claims != pool || p.Warm != pool || p.Duplicates != 0 || p.Failed != 0 {
		t.Errorf("pool: %d claims, %d warm, %d cold, %d failed, %d duplicates; want %d warm claims and no duplicate",
			p.Claims, p.Warm, p.Cold, p.Failed, p.Duplicates, pool)
	}

	x := res.Reap
	if x == nil || x.Expired != sessions || x.Deleted != sessions || x.Err != "" {
		t.Errorf("reap: %+v, want all %d expired pods deleted", x, sessions)
	}
}
