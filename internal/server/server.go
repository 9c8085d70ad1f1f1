// Package server is the in-pod HTTP server of podsandbox (cmd/sandbox-server): the http.Handler
// for the routes of package wire and the engine that runs commands.
//
// Every route but GET /health needs the token in wire.TokenHeader. Relative paths resolve against
// the work dir. File operations share their pure logic with the client's pods/exec transport
// through package fileops, so both transports give the same results.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/podsandbox/podsandbox/internal/wire"
)

// Defaults.
const (
	DefaultPort         = 8080
	DefaultWorkDir      = "/workspace"
	DefaultListen       = "0.0.0.0"
	DefaultMaxFileBytes = 64 << 20
	DefaultOutputLimit  = 100_000
	DefaultExecTimeout  = 1800 * time.Second
	DefaultWaitDelay    = 1500 * time.Millisecond

	jsonBodyLimit = 1 << 20 // every JSON body but /write and /exec
	execBodyLimit = 4 << 20 // /exec and the first line of /exec/stream
	maxExecTimout = 30 * 24 * time.Hour
)

// Config configures a Server. Zero values take the defaults above.
type Config struct {
	// Token is the initial exec token. Required.
	Token string
	// WorkDir is where commands run and relative paths resolve. Default DefaultWorkDir.
	WorkDir string
	// MaxFileBytes is the largest file read, read_bytes and edit accept and the largest content a
	// write accepts. Default DefaultMaxFileBytes.
	MaxFileBytes int64
	// Shell runs commands as `Shell -c command`. Default /bin/sh.
	Shell string
	// WaitDelay is how long a command's output is still read after its shell has exited, for
	// background children that keep stdout or stderr open. Default DefaultWaitDelay.
	WaitDelay time.Duration
	// Env is the base environment of commands. Default os.Environ() without wire.EnvToken.
	Env []string
	// Logger receives one record per request. Default: discard.
	Logger *slog.Logger
	// ProcRoot is where durable execs keep their records. Default wire.ProcessRoot.
	ProcRoot string
	// OutputRoot is where the full output of cut commands is kept. Default wire.OutputRoot.
	OutputRoot string
}

// Server is the http.Handler. Create it with New.
type Server struct {
	workDir      string
	maxFileBytes int64
	shell        string
	waitDelay    time.Duration
	baseEnv      []string
	log          *slog.Logger
	procRoot     string
	outputRoot   string
	routes       map[string]route

	mu      sync.Mutex
	token   [sha256.Size]byte // digest of the current token
	env     map[string]string // set by /configure
	closing bool              // no new commands (Shutdown or Drain)
	killed  bool              // Shutdown ran: running commands were killed, not ended by themselves
	running map[int]bool      // process group ids of running commands: true for a durable one
	durable int               // durable execs in progress (their records not yet finished)
	idle    *sync.Cond        // on mu: signalled when durable drops
	swept   time.Time         // the last sweep of expired durable records
}

type route struct {
	methods []string
	open    bool // no token needed
	handle  func(w http.ResponseWriter, r *http.Request) *apiError
}

// New validates cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Token == "" {
		return nil, errors.New("no exec token: set " + wire.EnvToken)
	}
	if cfg.WorkDir == "" {
		cfg.WorkDir = DefaultWorkDir
	}
	wd, err := filepath.Abs(cfg.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("work dir: %w", err)
	}
	if cfg.MaxFileBytes <= 0 {
		cfg.MaxFileBytes = DefaultMaxFileBytes
	}
	if cfg.Shell == "" {
		cfg.Shell = "/bin/sh"
	}
	if cfg.WaitDelay <= 0 {
		cfg.WaitDelay = DefaultWaitDelay
	}
	if cfg.Env == nil {
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, wire.EnvToken+"=") {
				cfg.Env = append(cfg.Env, kv)
			}
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = wire.ProcessRoot
	}
	if cfg.OutputRoot == "" {
		cfg.OutputRoot = wire.OutputRoot
	}
	s := &Server{
		workDir:      filepath.Clean(wd),
		maxFileBytes: cfg.MaxFileBytes,
		shell:        cfg.Shell,
		waitDelay:    cfg.WaitDelay,
		baseEnv:      cfg.Env,
		log:          cfg.Logger,
		procRoot:     cfg.ProcRoot,
		outputRoot:   cfg.OutputRoot,
		token:        sha256.Sum256([]byte(cfg.Token)),
		env:          map[string]string{},
		running:      map[int]bool{},
	}
	s.idle = sync.NewCond(&s.mu)
	post := []string{http.MethodPost}
	s.routes = map[string]route{
		wire.RouteHealth:     {methods: []string{http.MethodGet, http.MethodHead}, open: true, handle: s.handleHealth},
		wire.RouteExec:       {methods: post, handle: s.handleExec},
		wire.RouteExecStream: {methods: post, handle: s.handleExecStream},
		wire.RouteRead:       {methods: post, handle: s.handleRead},
		wire.RouteReadBytes:  {methods: post, handle: s.handleReadBytes},
		wire.RouteWrite:      {methods: post, handle: s.handleWrite},
		wire.RouteFiles:      {methods: []string{http.MethodPut}, handle: s.handleFiles},
		wire.RouteEdit:       {methods: post, handle: s.handleEdit},
		wire.RouteLs:         {methods: post, handle: s.handleLs},
		wire.RouteGlob:       {methods: post, handle: s.handleGlob},
		wire.RouteGrep:       {methods: post, handle: s.handleGrep},
		wire.RouteExists:     {methods: post, handle: s.handleExists},
		wire.RouteConfigure:  {methods: post, handle: s.handleConfigure},
	}
	return s, nil
}

// WorkDir returns the absolute work dir.
func (s *Server) WorkDir() string { return s.workDir }

// ServeHTTP authenticates, dispatches and logs one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w}
	name := r.URL.Path
	rt, known := s.routes[name]
	if !known {
		name = "unknown"
	}
	defer func() {
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("route", name),
			slog.Int("status", rec.statusCode()),
			slog.Int64("bytes", rec.bytes),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("remote", r.RemoteAddr))
	}()
	var e *apiError
	switch {
	case !rt.open && !s.authorized(r):
		e = newError(http.StatusUnauthorized, wire.CodeUnauthorized, "missing or wrong %s", wire.TokenHeader)
	case !known:
		e = newError(http.StatusNotFound, wire.CodeNotFound, "no route %s", r.URL.Path)
	case !allowed(rt.methods, r.Method):
		rec.Header().Set("Allow", strings.Join(rt.methods, ", "))
		e = newError(http.StatusMethodNotAllowed, wire.CodeInvalid, "method %s not allowed on %s", r.Method, r.URL.Path)
	default:
		e = rt.handle(rec, r)
	}
	if e != nil {
		if rec.wrote {
			// Too late for an error body; the client sees a cut response.
			s.log.Warn("error after response started", "route", name, "error", e.Error())
			return
		}
		writeError(rec, e)
	}
}

func allowed(methods []string, m string) bool {
	for _, x := range methods {
		if x == m {
			return true
		}
	}
	return false
}

// authorized compares the token header with the current token in constant time (on digests, so
// the length does not leak either).
func (s *Server) authorized(r *http.Request) bool {
	got := r.Header.Get(wire.TokenHeader)
	if got == "" {
		return false
	}
	d := sha256.Sum256([]byte(got))
	s.mu.Lock()
	want := s.token
	s.mu.Unlock()
	return subtle.ConstantTimeCompare(d[:], want[:]) == 1
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) *apiError {
	writeJSON(w, http.StatusOK, wire.Health{Ready: true})
	return nil
}

// handleConfigure rotates the token (when one is given) and merges env into the environment of
// every later command.
func (s *Server) handleConfigure(w http.ResponseWriter, r *http.Request) *apiError {
	var req wire.ConfigureRequest
	if e := decodeJSON(w, r, jsonBodyLimit, &req); e != nil {
		return e
	}
	if e := validEnv(req.Env); e != nil {
		return e
	}
	s.mu.Lock()
	if req.Token != "" {
		s.token = sha256.Sum256([]byte(req.Token))
	}
	for k, v := range req.Env {
		s.env[k] = v
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, wire.Health{Ready: true})
	return nil
}

func validEnv(env map[string]string) *apiError {
	for k, v := range env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return errInvalid("invalid environment variable %q", k)
		}
	}
	return nil
}

// Shutdown makes the server refuse new commands and kills the process group of every running
// command with SIGKILL. The HTTP server itself is shut down by the caller.
func (s *Server) Shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing, s.killed = true, true
	for pgid := range s.running {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	s.idle.Broadcast()
}

// Drain makes the server refuse new commands, kills the process group of every running command
// that is not durable, and waits until the durable ones (execs with a request id) have ended and
// recorded their ends, or ctx ends (then it is Shutdown). The agent drains when its stream ends:
// a client that lost it re-attaches to its durable calls through another.
func (s *Server) Drain(ctx context.Context) {
	s.mu.Lock()
	s.closing = true
	for pgid, durable := range s.running {
		if !durable {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}
	s.mu.Unlock()
	if s.Wait(ctx) != nil {
		s.Shutdown()
	}
}

// Wait waits until every durable exec has recorded its end (a record's end is written after the
// response), or ctx ends. Call it after Shutdown or Drain, before the process exits.
func (s *Server) Wait(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.idle.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.durable > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.idle.Wait()
	}
	return nil
}

// beginDurable counts a durable exec in progress for Drain; false when the server is closing.
func (s *Server) beginDurable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.durable++
	return true
}

func (s *Server) endDurable() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.durable--
	s.idle.Broadcast()
}

// wasKilled reports whether Shutdown has run.
func (s *Server) wasKilled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.killed
}

// Running reports the process group ids of the commands running now.
func (s *Server) Running() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]int, 0, len(s.running))
	for pgid := range s.running {
		out = append(out, pgid)
	}
	return out
}

// recorder remembers the status and size of a response for the log. Unwrap lets
// http.ResponseController reach the real writer (Flush, deadlines, full duplex).
type recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status = code
		r.wrote = true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if !r.wrote {
		r.status = http.StatusOK
		r.wrote = true
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Flush() { _ = r.FlushError() }

func (r *recorder) FlushError() error {
	if !r.wrote {
		r.status = http.StatusOK
		r.wrote = true
	}
	return http.NewResponseController(r.ResponseWriter).Flush()
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) statusCode() int {
	if !r.wrote {
		return http.StatusOK
	}
	return r.status
}
