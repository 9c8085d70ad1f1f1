package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/examples/internal/cli"
)

// ServiceConfig configures the service.
type ServiceConfig struct {
	// Cluster gives the sandbox options (namespace, pull policy, startup timeout); the connection
	// to the cluster is the podsandbox.Client given to NewService.
	Cluster cli.Cluster
	// Image runs the in-pod server (HTTP mode).
	Image string
	// PoolSize warm pods are kept started, so a new user's first request claims one in
	// milliseconds instead of waiting for a pod to start.
	PoolSize int
	// PoolName names the warm pool (label podsandbox.io/pool).
	PoolName string
	// IdleTimeout releases a user's sandbox after this long without a request.
	IdleTimeout time.Duration
	// CleanupInterval is how often idle sandboxes are released and expired pods reaped (also pods
	// left behind by an earlier process of this service that was killed).
	CleanupInterval time.Duration
	// MaxSessions caps the users with a sandbox at once; more get 429.
	MaxSessions int
	// Labels are added to every pod (the demo marks its pods with them).
	Labels map[string]string
	// Log receives the library's logs; AccessLog, when set, one line per exec request.
	Log, AccessLog *slog.Logger
	// Telemetry, when set, serves GET /metrics and prints the trace of each exec request that
	// asks for one (?trace=1). The Client must have been made with its ClientOptions.
	Telemetry *Telemetry
}

// Service gives each user their own sandbox pod: a SessionManager keyed by user name, fed by a
// warm pool, with the cleanup loop and a reaper.
type Service struct {
	mgr  *podsandbox.SessionManager
	log  *slog.Logger
	alog *slog.Logger // nil: no access log
	tel  *Telemetry   // nil: no /metrics, no traces

	mu   sync.Mutex
	pods map[string]string // user -> pod name, for listing (the manager knows only ids)
}

// NewService makes the session manager, with its warm pool and reaper, from client, and starts it:
// the pool fills and the cleanup loop runs until Shutdown (or until ctx ends). Shutdown stops them
// and deletes every pod; the caller closes client after it.
func NewService(ctx context.Context, client *podsandbox.Client, cfg ServiceConfig) (*Service, error) {
	factory, err := client.Factory(cfg.Image, append(cfg.Cluster.Options(cfg.Log),
		podsandbox.WithMode(podsandbox.ModeHTTP),
		podsandbox.WithIdleTimeout(cfg.IdleTimeout),
		podsandbox.WithLabels(cfg.Labels))...)
	if err != nil {
		return nil, err
	}
	s := &Service{log: cfg.Log, alog: cfg.AccessLog, tel: cfg.Telemetry, pods: map[string]string{}}
	mgr, err := podsandbox.NewSessionManager(factory,
		podsandbox.WithWarmPool(cfg.PoolSize, podsandbox.WithPoolName(cfg.PoolName)), // Shutdown deletes its pods
		podsandbox.WithReaper(client.Reaper(cfg.Cluster.Namespace)),
		podsandbox.WithMaxSessions(cfg.MaxSessions),
		podsandbox.WithDefaultIdleTimeout(cfg.IdleTimeout),
		podsandbox.WithCleanupInterval(cfg.CleanupInterval),
		podsandbox.WithManagerLogger(cfg.Log),
		podsandbox.WithOnRelease(s.forget))
	if err != nil {
		return nil, err
	}
	if err := mgr.Start(ctx); err != nil {
		return nil, err
	}
	s.mgr = mgr
	return s, nil
}

// newServiceWith wraps an existing manager (unit tests).
func newServiceWith(mgr *podsandbox.SessionManager, log *slog.Logger) *Service {
	return &Service{mgr: mgr, log: log, pods: map[string]string{}}
}

func (s *Service) forget(user string) {
	s.mu.Lock()
	delete(s.pods, user)
	s.mu.Unlock()
}

// WarmReady returns how many warm pods are ready to be claimed.
func (s *Service) WarmReady() int {
	if p := s.mgr.Pool(); p != nil {
		return p.Ready()
	}
	return 0 // no warm pool (unit tests)
}

// Shutdown stops the cleanup loop and deletes every user's pod and the warm pods.
func (s *Service) Shutdown(ctx context.Context) (int, error) {
	return s.mgr.Shutdown(ctx)
}

// Routes:
//
//	POST   /sessions/{user}/exec   body: a shell command; runs it in the user's sandbox (made on
//	                               first use). ?timeout=SECONDS (default 60).
//	GET    /sessions               the users with a sandbox, and the warm pods ready
//	DELETE /sessions/{user}        stops the user's sandbox and deletes its pod
//	GET    /metrics                the library's metrics, in Prometheus's text format (with
//	                               Telemetry); ?trace=1 on exec prints that request's trace
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /sessions/{user}/exec", s.exec)
	mux.HandleFunc("GET /sessions", s.list)
	mux.HandleFunc("DELETE /sessions/{user}", s.release)
	if s.tel != nil {
		mux.Handle("GET /metrics", s.tel.Metrics())
	}
	return mux
}

// ExecResult is the answer to POST /sessions/{user}/exec.
type ExecResult struct {
	User      string `json:"user"`
	Pod       string `json:"pod"`
	Warm      bool   `json:"warm"`        // the pod came from the warm pool
	New       bool   `json:"new_session"` // this request made the user's sandbox
	ExitCode  int    `json:"exit_code"`
	Output    string `json:"output"`
	Truncated bool   `json:"truncated,omitempty"`
	TimedOut  bool   `json:"timed_out,omitempty"`
	SessionMS int64  `json:"session_ms"` // getting the sandbox (claim or cold start)
	ExecMS    int64  `json:"exec_ms"`
}

// SessionInfo is one entry of GET /sessions.
type SessionInfo struct {
	User string `json:"user"`
	Pod  string `json:"pod,omitempty"`
}

// List is the answer to GET /sessions.
type List struct {
	Sessions  []SessionInfo `json:"sessions"`
	WarmReady int           `json:"warm_ready"`
}

var validUser = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)

const (
	maxCommandBytes = 64 << 10
	maxOutputBytes  = 64 << 10
	defaultTimeout  = 60 * time.Second
	maxTimeout      = 10 * time.Minute
)

func (s *Service) exec(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	if !validUser.MatchString(user) {
		httpError(w, http.StatusBadRequest, "user must be 1-32 characters of a-z, 0-9 and '-'")
		return
	}
	timeout := defaultTimeout
	if v := r.URL.Query().Get("timeout"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || time.Duration(n)*time.Second > maxTimeout {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("timeout must be 1-%d seconds", int(maxTimeout.Seconds())))
			return
		}
		timeout = time.Duration(n) * time.Second
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCommandBytes))
	if err != nil {
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the command must be at most %d bytes", maxCommandBytes))
		return
	}
	command := strings.TrimSpace(string(body))
	if command == "" {
		httpError(w, http.StatusBadRequest, "the request body must be a shell command")
		return
	}

	ctx := r.Context()
	if s.tel != nil && r.URL.Query().Get("trace") == "1" {
		var span trace.Span
		ctx, span = s.tel.Tracer().Start(ctx, "POST /sessions/{user}/exec",
			trace.WithAttributes(traceRequested.Bool(true), attribute.String("sessions.user", user)))
		defer span.End()
	}
	res := ExecResult{User: user, New: !s.mgr.Has(user)}
	t := time.Now()
	sb, err := s.mgr.GetOrCreate(ctx, user)
	res.SessionMS = time.Since(t).Milliseconds()
	if err != nil {
		s.fail(w, user, err)
		return
	}
	if p, ok := sb.(interface{ PodName() string }); ok {
		res.Pod = p.PodName()
		res.Warm = strings.HasPrefix(res.Pod, podsandbox.PodNamePrefix+"pool-")
		s.mu.Lock()
		s.pods[user] = res.Pod
		s.mu.Unlock()
	}
	t = time.Now()
	out, err := sb.Execute(ctx, command, podsandbox.WithTimeout(timeout), podsandbox.WithOutputLimit(maxOutputBytes))
	res.ExecMS = time.Since(t).Milliseconds()
	if err != nil {
		s.fail(w, user, err)
		return
	}
	res.ExitCode, res.Output, res.Truncated, res.TimedOut = out.ExitCode, out.Output, out.Truncated, out.TimedOut
	if s.alog != nil {
		s.alog.Info("exec", "user", user, "pod", res.Pod, "exit", res.ExitCode, "session_ms", res.SessionMS, "exec_ms", res.ExecMS)
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Service) list(w http.ResponseWriter, _ *http.Request) {
	l := List{Sessions: []SessionInfo{}, WarmReady: s.WarmReady()}
	s.mu.Lock()
	for _, u := range s.mgr.Sessions() {
		l.Sessions = append(l.Sessions, SessionInfo{User: u, Pod: s.pods[u]})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, l)
}

func (s *Service) release(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	ok, err := s.mgr.Release(r.Context(), user)
	if err != nil {
		s.fail(w, user, err)
		return
	}
	if !ok {
		httpError(w, http.StatusNotFound, "no session for "+user)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// fail maps the library's errors to HTTP statuses.
func (s *Service) fail(w http.ResponseWriter, user string, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, podsandbox.ErrSessionLimit):
		status = http.StatusTooManyRequests
	case errors.Is(err, podsandbox.ErrStartup), errors.Is(err, podsandbox.ErrSandboxGone):
		status = http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		status = http.StatusGatewayTimeout
	case errors.Is(err, context.Canceled):
		return // the client went away
	}
	s.log.Warn("request failed", "user", user, "status", status, "err", err)
	httpError(w, status, err.Error())
}

func httpError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
