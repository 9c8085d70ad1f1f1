package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podsandbox/podsandbox"
)

// fakeSandbox implements what the service and the session manager use; any other method of the
// embedded (nil) interface panics.
type fakeSandbox struct {
	podsandbox.Sandbox
	id string

	mu      sync.Mutex
	started bool
	stopped bool
	last    time.Time
}

func (f *fakeSandbox) ID() string      { return f.id }
func (f *fakeSandbox) PodName() string { return podsandbox.PodName(f.id) }
func (f *fakeSandbox) Start(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = true
	return nil
}
func (f *fakeSandbox) Stop(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
	return nil
}
func (f *fakeSandbox) IsAlive(context.Context) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.started && !f.stopped
}
func (f *fakeSandbox) Execute(_ context.Context, command string, _ ...podsandbox.ExecOption) (*podsandbox.ExecuteResponse, error) {
	out := "ran " + command + " in " + f.id + "\n"
	code := 0
	if strings.HasPrefix(command, "false") {
		code = 1
	}
	return &podsandbox.ExecuteResponse{Output: out, Stdout: out, ExitCode: code}, nil
}
func (f *fakeSandbox) Touch() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = time.Now()
}
func (f *fakeSandbox) LastActivity() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}
func (f *fakeSandbox) IdleTimeout() time.Duration { return time.Hour }

func newTestService(t *testing.T, maxSessions int) (*Service, *Client) {
	t.Helper()
	factory := podsandbox.FactoryFunc(func(_ context.Context, id string) (podsandbox.Sandbox, error) { return &fakeSandbox{id: id}, nil })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mgr, err := podsandbox.NewSessionManager(factory, podsandbox.WithMaxSessions(maxSessions), podsandbox.WithManagerLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the server closes, then the manager shuts down (a no-op when the
	// test did it).
	t.Cleanup(func() { _, _ = mgr.Shutdown(context.Background()) })
	svc := newServiceWith(mgr, log)
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	return svc, &Client{Base: srv.URL, HTTP: srv.Client()}
}

func TestServiceRoutes(t *testing.T) {
	ctx := context.Background()
	svc, c := newTestService(t, 2)

	r, err := c.Exec(ctx, "alice", "echo hi")
	if err != nil || r.Output != "ran echo hi in alice\n" || r.Pod != "pab-sandbox-alice" || !r.New || r.Warm || r.ExitCode != 0 {
		t.Fatalf("first exec: %+v %v", r, err)
	}
	r, err = c.Exec(ctx, "alice", "false")
	if err != nil || r.New || r.ExitCode != 1 {
		t.Fatalf("second exec: %+v %v", r, err)
	}
	if _, err := c.Exec(ctx, "bob", "true"); err != nil {
		t.Fatal(err)
	}
	l, err := c.List(ctx)
	if err != nil || len(l.Sessions) != 2 || l.Sessions[0] != (SessionInfo{"alice", "pab-sandbox-alice"}) || l.Sessions[1].User != "bob" {
		t.Fatalf("list: %+v %v", l, err)
	}
	// The limit is 2: a third user is refused, the first two are still served.
	if _, err := c.Exec(ctx, "carol", "true"); err == nil || !strings.Contains(err.Error(), "429") || !strings.Contains(err.Error(), "Session limit of 2 reached") {
		t.Errorf("third user: %v", err)
	}
	if ok, err := c.Release(ctx, "alice"); !ok || err != nil {
		t.Errorf("release alice: %v %v", ok, err)
	}
	if ok, err := c.Release(ctx, "alice"); ok || err != nil {
		t.Errorf("release alice again: %v %v", ok, err)
	}
	if l, _ := c.List(ctx); len(l.Sessions) != 1 || l.Sessions[0].User != "bob" {
		t.Errorf("after release: %+v", l)
	}
	if n, err := svc.Shutdown(ctx); n != 1 || err != nil {
		t.Errorf("shutdown: %d %v", n, err)
	}
}

func TestServiceBadRequests(t *testing.T) {
	_, c := newTestService(t, 0)
	for _, tt := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/sessions/Alice/exec", "true", http.StatusBadRequest},
		{"POST", "/sessions/a_b/exec", "true", http.StatusBadRequest},
		{"POST", "/sessions/" + strings.Repeat("a", 33) + "/exec", "true", http.StatusBadRequest},
		{"POST", "/sessions/alice/exec", "  \n", http.StatusBadRequest},
		{"POST", "/sessions/alice/exec?timeout=0", "true", http.StatusBadRequest},
		{"POST", "/sessions/alice/exec?timeout=x", "true", http.StatusBadRequest},
		{"POST", "/sessions/alice/exec", strings.Repeat("x", maxCommandBytes+1), http.StatusRequestEntityTooLarge},
		{"GET", "/sessions/alice/exec", "", http.StatusMethodNotAllowed},
		{"DELETE", "/sessions/nobody", "", http.StatusNotFound},
		{"POST", "/sessions/alice/exec?timeout=5", "true", http.StatusOK},
	} {
		req, _ := http.NewRequest(tt.method, c.Base+tt.path, strings.NewReader(tt.body))
		resp, err := c.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s %s: %d %s, want %d", tt.method, tt.path, resp.StatusCode, body, tt.status)
		}
	}
}
