package podsandbox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Factory makes the sandbox for a session; SessionManager starts it. Client.Factory returns one
// for Kubernetes pods; FactoryFunc adapts a function.
type Factory interface {
	NewSandbox(ctx context.Context, sessionID string) (Sandbox, error)
}

// FactoryFunc adapts a function to Factory.
type FactoryFunc func(ctx context.Context, sessionID string) (Sandbox, error)

// NewSandbox calls f.
func (f FactoryFunc) NewSandbox(ctx context.Context, sessionID string) (Sandbox, error) {
	return f(ctx, sessionID)
}

// ErrSessionLimit matches *SessionLimitError.
var ErrSessionLimit = errors.New("session limit reached")

// ErrManagerClosed is returned by a SessionManager after Shutdown.
var ErrManagerClosed = errors.New("podsandbox: session manager is shut down")

// SessionLimitError is returned by GetOrCreate for a new session when MaxSessions are open.
// Its message is upstream's.
type SessionLimitError struct{ Limit int }

func (e *SessionLimitError) Error() string {
	return fmt.Sprintf("Session limit of %d reached. Release an idle session before opening another.", e.Limit)
}
func (e *SessionLimitError) Is(target error) bool { return target == ErrSessionLimit }

// SessionManager keeps one sandbox per session id: the Go port of upstream's SessionManager, plus
// a warm pool, adoption of pods made by other replicas, and a reaper for pods whose process died.
// It owns its goroutines (creations, the warm pool, the cleanup loop) and Shutdown waits for all
// of them. It is safe for concurrent use.
type SessionManager struct {
	factory       Factory
	maxSessions   int
	defaultIdle   time.Duration
	cleanupEvery  time.Duration
	createTimeout time.Duration
	onRelease     func(sessionID string)
	log           *slog.Logger
	pool          *WarmPool
	reaper        *Reaper
	sessionEnv    func(sessionID string) map[string]string
	bg            background // creations, replaced sessions' stops, the cleanup loop
	tel           *telemetry // the factory's Client's, else the global providers'

	mu       sync.Mutex
	sessions map[string]*session
	started  bool
	closed   bool
}

// session is one entry; ready is closed once the sandbox is started (or failed).
type session struct {
	sb    Sandbox
	ready chan struct{}
	err   error
}

// ManagerOption configures a SessionManager.
type ManagerOption func(*managerConfig) error

type managerConfig struct {
	m         *SessionManager
	poolSize  int
	poolOpts  []PoolOption
	poolGiven bool
	tp        trace.TracerProvider
	mp        metric.MeterProvider
}

// WithMaxSessions caps the open sessions; at the cap a new id gets *SessionLimitError while
// existing ids are still served. Zero (the default) means no cap.
func WithMaxSessions(n int) ManagerOption {
	return func(c *managerConfig) error {
		if n < 0 {
			return fmt.Errorf("%w: max sessions %d is negative (0 means no cap)", ErrInvalidArgument, n)
		}
		c.m.maxSessions = n
		return nil
	}
}

// WithDefaultIdleTimeout is the idle timeout for sandboxes that do not report one (default 1 h).
func WithDefaultIdleTimeout(d time.Duration) ManagerOption {
	return func(c *managerConfig) error {
		if d <= 0 {
			return fmt.Errorf("%w: default idle timeout %s must be positive", ErrInvalidArgument, d)
		}
		c.m.defaultIdle = d
		return nil
	}
}

// WithCleanupInterval sets how often the loop started by Start releases idle sessions and runs the
// reaper (default 1 min).
func WithCleanupInterval(d time.Duration) ManagerOption {
	return func(c *managerConfig) error {
		if d <= 0 {
			return fmt.Errorf("%w: cleanup interval %s must be positive", ErrInvalidArgument, d)
		}
		c.m.cleanupEvery = d
		return nil
	}
}

// WithOnRelease calls fn after a session's sandbox is stopped, outside the manager's lock.
func WithOnRelease(fn func(sessionID string)) ManagerOption {
	return func(c *managerConfig) error { c.m.onRelease = fn; return nil }
}

// WithManagerLogger sets the logger (default: the factory's Client's, else slog.Default()).
func WithManagerLogger(l *slog.Logger) ManagerOption {
	return func(c *managerConfig) error { c.m.log = l; return nil }
}

// WithWarmPool keeps size pods of the factory's spec started, so new sessions claim a ready pod in
// milliseconds before falling back to a cold start. The factory must be a *KubernetesFactory (the
// pool is built from its spec, so warm and cold sessions are the same pod). Start fills the pool;
// Shutdown deletes its unclaimed pods.
func WithWarmPool(size int, opts ...PoolOption) ManagerOption {
	return func(c *managerConfig) error {
		if size < 1 {
			return fmt.Errorf("%w: warm pool size %d must be at least 1", ErrInvalidArgument, size)
		}
		c.poolSize, c.poolOpts, c.poolGiven = size, opts, true
		return nil
	}
}

// WithSessionEnv gives each session's sandbox environment variables of its own (an API key, the
// user's name): bound when a warm pod is claimed, and given to a KubernetesFactory's cold starts.
func WithSessionEnv(fn func(sessionID string) map[string]string) ManagerOption {
	return func(c *managerConfig) error { c.m.sessionEnv = fn; return nil }
}

// WithManagerTelemetry sets the providers of the manager's spans and of its live-sessions metric
// (nil for either: the factory's Client's, else the global provider). A manager over a
// *KubernetesFactory needs it only to report apart from its Client.
func WithManagerTelemetry(tp trace.TracerProvider, mp metric.MeterProvider) ManagerOption {
	return func(c *managerConfig) error { c.tp, c.mp = tp, mp; return nil }
}

// WithReaper makes the cleanup loop also delete expired managed pods in the reaper's namespace,
// including pods left behind by processes that are gone (see Client.Reaper).
func WithReaper(r *Reaper) ManagerOption {
	return func(c *managerConfig) error {
		if r == nil {
			return fmt.Errorf("%w: WithReaper(nil)", ErrInvalidArgument)
		}
		c.m.reaper = r
		return nil
	}
}

// NewSessionManager returns a manager that makes sandboxes with factory. Call Start to fill the
// warm pool and run the idle cleanup, and Shutdown when done.
func NewSessionManager(factory Factory, opts ...ManagerOption) (*SessionManager, error) {
	if factory == nil {
		return nil, fmt.Errorf("%w: NewSessionManager needs a factory", ErrInvalidArgument)
	}
	m := &SessionManager{factory: factory, defaultIdle: time.Hour, cleanupEvery: time.Minute,
		createTimeout: 2 * time.Minute, sessions: map[string]*session{}}
	c := &managerConfig{m: m}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	kf, _ := factory.(*KubernetesFactory)
	if m.log == nil {
		m.log = slog.Default()
		if kf != nil {
			m.log = kf.c.log
		}
	}
	if kf != nil && c.tp == nil && c.mp == nil {
		m.tel = kf.c.tel
	} else {
		tp, mp := c.tp, c.mp
		if kf != nil {
			tp, mp = cmp.Or(tp, kf.c.tel.tp), cmp.Or(mp, kf.c.tel.mp)
		}
		tel, err := newTelemetry(tp, mp)
		if err != nil {
			return nil, err
		}
		m.tel = tel
	}
	if kf != nil {
		// a claim and a Start, each bounded by the startup timeout
		m.createTimeout = 2*kf.spec.startupTimeout + 10*time.Second
	}
	if c.poolGiven {
		if kf == nil {
			return nil, fmt.Errorf("%w: WithWarmPool needs the factory of Client.Factory, whose spec the pool copies", ErrInvalidArgument)
		}
		p, err := newWarmPool(kf, c.poolSize, c.poolOpts, m.log)
		if err != nil {
			return nil, err
		}
		m.pool = p
	}
	m.bg.start()
	return m, nil
}

// KubernetesFactory makes a KubernetesPodSandbox per session from one spec, validated once by
// Client.Factory. Each sandbox is named after its session id, so the pod name is deterministic
// and another replica adopts it, and gets the manager's per-session env (WithSessionEnv).
type KubernetesFactory struct {
	c    *Client
	spec config
}

// Factory validates the options once and returns a factory of sandboxes for image on this client.
// It refuses WithSandboxID/WithSessionID (each sandbox is named after its session) and the
// connection options (the Client holds the connection).
func (c *Client) Factory(image string, opts ...Option) (*KubernetesFactory, error) {
	spec, err := newSpec(image, opts, specForFactory)
	if err != nil {
		return nil, err
	}
	if err := c.canServe(spec); err != nil {
		return nil, err
	}
	return &KubernetesFactory{c: c, spec: spec}, nil
}

// NewSandbox makes (does not start) the sandbox of session id.
func (f *KubernetesFactory) NewSandbox(ctx context.Context, id string) (Sandbox, error) {
	spec := f.spec
	spec.sandboxID = id
	if env := sessionEnvFrom(ctx); len(env) > 0 {
		spec.env = mergeInto(spec.env, env)
		for k := range env {
			if !envName.MatchString(k) {
				return nil, fmt.Errorf("%w: session env name %q", ErrInvalidArgument, k)
			}
		}
	}
	return f.c.newSandbox(spec)
}

type sessionEnvKey struct{}

func withSessionEnv(ctx context.Context, env map[string]string) context.Context {
	if len(env) == 0 {
		return ctx
	}
	return context.WithValue(ctx, sessionEnvKey{}, env)
}

// sessionEnvFrom returns the per-session env a SessionManager passes to its factory.
func sessionEnvFrom(ctx context.Context) map[string]string {
	env, _ := ctx.Value(sessionEnvKey{}).(map[string]string)
	return env
}

func (m *SessionManager) envFor(id string) map[string]string {
	if m.sessionEnv == nil {
		return nil
	}
	return m.sessionEnv(id)
}

// Pool returns the warm pool, or nil without WithWarmPool.
func (m *SessionManager) Pool() *WarmPool { return m.pool }

// Start fills the warm pool (if any) and starts the loop that releases idle sessions and runs the
// reaper (if any) every cleanup interval. Both run until Shutdown, or until ctx is done. Calling
// it again is a no-op.
func (m *SessionManager) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return ErrManagerClosed
	case m.started:
		return nil
	}
	if m.pool != nil {
		if err := m.pool.start(ctx); err != nil {
			return err
		}
	}
	m.started = true
	m.bg.do(func(bctx context.Context) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(bctx, cancel)
		defer stop()
		t := time.NewTicker(m.cleanupEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				m.sweep(ctx)
			}
		}
	})
	return nil
}

// GetOrCreate returns the session's sandbox, creating and starting it if needed. Exactly one
// sandbox is made per id however many goroutines ask at once. The creation runs on the manager's
// own context, bounded by the startup timeout, not on any caller's: each caller waits on its own
// ctx, and a caller that gives up does not fail the others (the session is kept for the next
// call). Callers that joined a creation that failed get its error. A live sandbox is returned
// without any API request; a dead one is stopped and replaced; one whose Start fails is stopped
// and not kept. Every call counts as activity.
func (m *SessionManager) GetOrCreate(ctx context.Context, id string) (sb Sandbox, err error) {
	// The attributes are set only on a recording span: with no provider installed, a live
	// session's GetOrCreate stays a map lookup plus the no-op span's context.
	ctx, span := m.tel.tracer.Start(ctx, "podsandbox.GetOrCreate")
	outcome := "existing"
	defer func() {
		if err != nil {
			outcome = "failed"
		}
		if span.IsRecording() {
			span.SetAttributes(attrSessionID.String(id), attrOutcome.String(outcome))
		}
		endSpan(span, err)
	}()
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, ErrManagerClosed
		}
		e, ok := m.sessions[id]
		if !ok {
			if m.maxSessions > 0 && len(m.sessions) >= m.maxSessions {
				m.mu.Unlock()
				return nil, &SessionLimitError{Limit: m.maxSessions}
			}
			e = &session{ready: make(chan struct{})}
			m.sessions[id] = e
			outcome = "created"
			// values (trace ids, loggers) of the first caller, but none of its cancellation
			values := context.WithoutCancel(ctx)
			started := m.bg.do(func(bctx context.Context) {
				cctx, cancel := context.WithTimeout(values, m.createTimeout)
				defer cancel()
				stop := context.AfterFunc(bctx, cancel) // Shutdown cancels creations
				defer stop()
				m.create(cctx, id, e)
			})
			if !started {
				delete(m.sessions, id)
				m.mu.Unlock()
				return nil, ErrManagerClosed
			}
			m.mu.Unlock()
			select {
			case <-e.ready:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if e.err != nil {
				return nil, e.err
			}
			return e.sb, nil
		}
		m.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err != nil {
			return nil, e.err // the creation this call joined failed; the next call tries again
		}
		if e.sb.IsAlive(ctx) {
			e.sb.Touch()
			return e.sb, nil
		}
		m.mu.Lock()
		if m.sessions[id] == e {
			delete(m.sessions, id)
			m.tel.live.Add(ctx, -1)
		}
		m.mu.Unlock()
		m.log.Info("session sandbox is dead; replacing it", "session", id)
		dead := e.sb
		if !m.bg.do(func(bctx context.Context) { m.stopSandbox(bctx, dead) }) {
			m.stopSandbox(ctx, dead)
		}
	}
}

// stopSandbox stops sb, also when ctx is already cancelled (the manager is shutting down).
func (m *SessionManager) stopSandbox(ctx context.Context, sb Sandbox) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := sb.Stop(ctx); err != nil {
		m.log.Warn("could not stop a replaced session's sandbox", "err", err)
	}
}

// create fills e: adopt or claim a pod, else make one with the factory and start it. A panic in
// the factory or a hook becomes the session's error.
func (m *SessionManager) create(ctx context.Context, id string, e *session) {
	var sb Sandbox
	var err error
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("podsandbox: creating session %s panicked: %v", id, r)
			m.log.Error("session creation panicked", "session", id, "panic", r)
			if sb != nil {
				m.stopSandbox(ctx, sb)
			}
			sb = nil
		}
		if err != nil {
			e.err = err
			m.mu.Lock()
			if m.sessions[id] == e {
				delete(m.sessions, id)
			}
			m.mu.Unlock()
		} else {
			sb.Touch()
			e.sb = sb
			m.tel.live.Add(ctx, 1)
		}
		close(e.ready)
	}()
	env := m.envFor(id)
	if m.pool != nil {
		var ksb *KubernetesPodSandbox
		ksb, err = m.pool.Claim(ctx, id, env)
		switch {
		case err == nil:
			sb = ksb
		case !errors.Is(err, ErrPoolEmpty):
			m.log.Warn("warm pool claim failed; starting a cold sandbox", "session", id, "err", err)
		}
	}
	if sb == nil {
		sb, err = m.factory.NewSandbox(withSessionEnv(ctx, env), id)
		if err == nil && sb == nil {
			err = fmt.Errorf("podsandbox: the factory returned no sandbox and no error for session %s", id)
		}
		if err == nil {
			if err = sb.Start(ctx); err != nil {
				m.stopSandbox(ctx, sb)
				sb = nil
			}
		}
	}
}

// KeepAlive marks the session as active (for example while an agent is thinking) so idle cleanup
// leaves it alone. It reports whether the session exists.
func (m *SessionManager) KeepAlive(id string) bool {
	m.mu.Lock()
	e, ok := m.sessions[id]
	m.mu.Unlock()
	if !ok || !isReady(e) || e.sb == nil {
		return false
	}
	e.sb.Touch()
	return true
}

func isReady(e *session) bool {
	select {
	case <-e.ready:
		return true
	default:
		return false
	}
}

// Release stops the session's sandbox and forgets it. It reports whether the session existed. A
// session still starting is released once its start finishes.
func (m *SessionManager) Release(ctx context.Context, id string) (bool, error) {
	m.mu.Lock()
	e, ok := m.sessions[id]
	m.mu.Unlock()
	if !ok {
		return false, nil
	}
	select {
	case <-e.ready:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	m.mu.Lock()
	if m.sessions[id] != e {
		m.mu.Unlock()
		return false, nil
	}
	delete(m.sessions, id)
	if e.sb != nil {
		m.tel.live.Add(ctx, -1)
	}
	m.mu.Unlock()
	if e.sb == nil {
		return false, nil
	}
	err := e.sb.Stop(ctx)
	if m.onRelease != nil {
		m.onRelease(id)
	}
	return true, err
}

// CleanupIdle releases every session idle for longer than its limit: maxIdle when positive, else
// the sandbox's own IdleTimeout, else the manager's default. It returns how many it released.
func (m *SessionManager) CleanupIdle(ctx context.Context, maxIdle time.Duration) (int, error) {
	now := time.Now()
	var idle []string
	m.mu.Lock()
	for id, e := range m.sessions {
		if !isReady(e) || e.sb == nil {
			continue
		}
		limit := maxIdle
		if limit <= 0 {
			limit = e.sb.IdleTimeout()
		}
		if limit <= 0 {
			limit = m.defaultIdle
		}
		if now.Sub(e.sb.LastActivity()) > limit {
			idle = append(idle, id)
		}
	}
	m.mu.Unlock()
	var errs []error
	n := 0
	for _, id := range idle {
		ok, err := m.Release(ctx, id)
		if ok {
			n++
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("release %s: %w", id, err))
		}
	}
	return n, errors.Join(errs...)
}

func (m *SessionManager) sweep(ctx context.Context) {
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("cleanup loop recovered from a panic", "panic", r)
		}
	}()
	// Releases run to their end even when Shutdown cancels the loop: a half-done release would
	// forget a session whose pod still runs.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	n, err := m.CleanupIdle(rctx, 0)
	if err != nil {
		m.log.Error("idle cleanup", "released", n, "err", err)
	} else if n > 0 {
		m.log.Info("idle sessions released", "count", n)
	}
	if m.reaper != nil {
		if res, err := m.reaper.Reap(ctx); err != nil {
			m.log.Error("reaper", "err", err)
		} else if res.Pods > 0 {
			m.log.Info("expired pods reaped", "pods", res.Pods)
		}
	}
}

// Shutdown stops the cleanup loop and cancels creations in progress (waiting for them), releases
// every session concurrently, deletes the warm pool's unclaimed pods, and returns how many
// sessions it released. Later calls of GetOrCreate get ErrManagerClosed.
func (m *SessionManager) Shutdown(ctx context.Context) (int, error) {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.bg.stop()
	ids := m.Sessions()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		n    int
		errs []error
	)
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := m.Release(ctx, id)
			mu.Lock()
			defer mu.Unlock()
			if ok {
				n++
			}
			if err != nil {
				m.log.Warn("release failed during shutdown", "session", id, "err", err)
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	if m.pool != nil {
		if err := m.pool.close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// Sessions returns the ids of the open sessions, sorted.
func (m *SessionManager) Sessions() []string {
	m.mu.Lock()
	ids := make([]string, 0, len(m.sessions))
	for id := range m.sessions {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	sort.Strings(ids)
	return ids
}

// Len returns the number of open (or starting) sessions.
func (m *SessionManager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

// Has reports whether the session is open (or starting).
func (m *SessionManager) Has(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.sessions[id]
	return ok
}
