//go:build e2e

package main

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/examples/internal/cli"
	"github.com/podsandbox/podsandbox/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

const managed = podsandbox.LabelManagedBy + "=" + podsandbox.ManagedByValue

func serviceConfig(t *testing.T, out *cli.Buffer) ServiceConfig {
	env := e2e.Env(t)
	return ServiceConfig{
		Cluster:         cli.Cluster{REST: env.Config, Namespace: env.Namespace, PullPolicy: "Never", StartupTimeout: 3 * time.Minute},
		Image:           e2e.ImageServer,
		PoolSize:        2,
		PoolName:        "sessions",
		IdleTimeout:     10 * time.Minute,
		CleanupInterval: 30 * time.Second,
		MaxSessions:     10,
		Log:             cli.NewLogger(out, false),
	}
}

// connect makes the test's podsandbox.Client as run does, closed when the test ends: after the
// service's Shutdown, whose cleanup is registered later and so runs first.
func connect(ctx context.Context, t *testing.T, cfg ServiceConfig, opts ...podsandbox.ClientOption) *podsandbox.Client {
	t.Helper()
	client, err := cfg.Cluster.Connect(ctx, cfg.Log, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cli.Close(context.Background(), client); err != nil {
			t.Error(err)
		}
	})
	return client
}

// startService runs the service of cfg on httptest, shut down when the test ends (before its
// Client closes), and returns it with a client of it.
func startService(ctx context.Context, t *testing.T, cfg ServiceConfig, opts ...podsandbox.ClientOption) (*Service, *Client) {
	t.Helper()
	svc, err := NewService(ctx, connect(ctx, t, cfg, opts...), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Shutdown(context.Background()) })
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	return svc, &Client{Base: srv.URL, HTTP: srv.Client()}
}

// TestSessionsService: the client scenario (two users, isolation, same sandbox again, release)
// against the service on httptest, then Shutdown leaves no pod in the namespace.
func TestSessionsService(t *testing.T) {
	env := e2e.Env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var buf cli.Buffer
	out := &buf
	defer func() { t.Logf("output:\n%s", buf.String()) }()

	cfg := serviceConfig(t, out)
	svc, err := NewService(ctx, connect(ctx, t, cfg), cfg)
	if err != nil {
		t.Fatal(err)
	}
	shut := false
	t.Cleanup(func() {
		if !shut {
			svc.Shutdown(context.Background())
		}
	})
	if err := waitWarm(ctx, svc, 2, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := livePods(t, podsandbox.LabelPool+"=sessions,"+podsandbox.LabelPoolState+"=warm"); n != 2 {
		t.Errorf("%d warm pods in the namespace, want 2", n)
	}

	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	if err := Scenario(ctx, &Client{Base: srv.URL, HTTP: srv.Client()}, out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"[new session: warm pod claimed]",
		"✓ bob has his own sandbox",
		"✓ same sandbox, her file is still there",
		"GET /sessions   → alice, bob",
		"GET /sessions   → bob (",
		"✓ after release alice starts over in a fresh sandbox",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// Two users have a sandbox, and the pool refills to two warm pods: four pods.
	if err := waitWarm(ctx, svc, 2, time.Minute); err != nil {
		t.Error(err)
	}
	if n := livePods(t, ""); n != 4 {
		t.Errorf("%d managed pods before Shutdown, want 4 (2 users + 2 warm)", n)
	}

	srv.Close()
	shut = true
	if err := Shutdown(ctx, svc, env.Client, env.Namespace, managed, out); err != nil {
		t.Fatal(err)
	}
	if n := livePods(t, ""); n != 0 {
		t.Errorf("%d managed pods after Shutdown", n)
	}
}

// TestSessionsIdleCleanup: the cleanup loop releases a sandbox that is idle for longer than its
// idle timeout, and its pod is deleted.
func TestSessionsIdleCleanup(t *testing.T) {
	env := e2e.Env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var buf cli.Buffer
	out := &buf
	cfg := serviceConfig(t, out)
	cfg.PoolSize, cfg.PoolName = 1, "idle"
	cfg.IdleTimeout, cfg.CleanupInterval = 3*time.Second, 500*time.Millisecond
	svc, c := startService(ctx, t, cfg)

	// carol claims a warm pod: a cold start slower than the 3 s idle timeout (a busy cluster) would
	// have its pod reaped while it starts, since a new pod's expiry is its creation plus the idle
	// timeout.
	if err := waitWarm(ctx, svc, 1, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	r, err := c.Exec(ctx, "carol", "echo hi")
	if err != nil || r.ExitCode != 0 || !r.Warm {
		t.Fatalf("%+v %v\n%s", r, err, buf.String())
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := c.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Sessions) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("carol's idle sandbox was not released: %+v", l)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The manager forgets a session before its Stop sends the pod's delete, so the pod may still
	// read as live for a moment after the list is empty.
	for {
		p, err := env.Client.CoreV1().Pods(env.Namespace).Get(ctx, r.Pod, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && p.DeletionTimestamp != nil) {
			break
		}
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s of the released session is not being deleted 30 s after the idle timeout", r.Pod)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestSessionsTelemetry: with Telemetry the service serves the library's metrics on /metrics and
// prints the trace of a request that asks for one (a warm-pool claim inside GetOrCreate, then the
// command), and of no other request.
func TestSessionsTelemetry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var buf, traces cli.Buffer
	cfg := serviceConfig(t, &buf)
	cfg.PoolSize, cfg.PoolName = 1, "tel"
	tel, err := NewTelemetry(&traces)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	cfg.Telemetry = tel
	svc, c := startService(ctx, t, cfg, tel.ClientOptions()...)
	if err := waitWarm(ctx, svc, 1, 3*time.Minute); err != nil {
		t.Fatal(err)
	}

	r, err := c.ExecTraced(ctx, "dana", "echo traced")
	if err != nil || r.Output != "traced\n" || !r.Warm {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := c.Exec(ctx, "erin", "true"); err != nil {
		t.Fatal(err)
	}
	got := traces.String()
	t.Logf("traces:\n%s", got)
	for _, want := range []string{
		"POST /sessions/{user}/exec", "user=dana",
		"\n    podsandbox.GetOrCreate", "outcome=created",
		"\n      podsandbox.Claim", "claim=warm", "pod=" + r.Pod,
		"\n    podsandbox.Execute", "exit=0  stdout_bytes=7",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the printed trace lacks %q", want)
		}
	}
	if n := strings.Count(got, "trace "); n != 1 || strings.Contains(got, "erin") {
		t.Errorf("%d traces printed, want only dana's", n)
	}

	m, err := c.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\npodsandbox_sessions_live 2\n",
		`podsandbox_pool_claims_total{podsandbox_claim_result="warm",podsandbox_pool_name="tel"}`,
		`podsandbox_exec_duration_seconds_count{podsandbox_mode="http"} 2` + "\n",
		"# TYPE podsandbox_start_duration_seconds histogram",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", m)
	}
}

// livePods counts the managed pods in the test namespace that are not being deleted.
func livePods(t *testing.T, selector string) int {
	t.Helper()
	return len(e2e.LivePods(t, e2e.Env(t).Namespace, selector))
}
