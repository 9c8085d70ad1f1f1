package podsandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"sync"
	"time"
)

// Factory makes the sandbox for a session; SessionManager starts it.
type Factory func(ctx context.Context, sessionID string) (Sandbox, error)

// ErrSessionLimit matches *SessionLimitError.
var ErrSessionLimit = errors.New("session limit reached")

// SessionLimitError is returned by GetOrCreate for a new session when MaxSessions are open.
// Its message is upstream's.
type SessionLimitError struct{ Limit int }

func (e *SessionLimitError) Error() string {
	return fmt.Sprintf("Session limit of %d reached. Release an idle session before opening another.", e.Limit)
}
func (e *SessionLimitError) Is(target error) bool { return target == ErrSessionLimit }

// SessionManager keeps one sandbox per session id: the Go port of upstream's SessionManager, plus
// a warm pool, adoption of pods made by other replicas, and a reaper for pods whose process died.
// It is safe for concurrent use.
type SessionManager struct {
	factory     Factory
	maxSessions int
	defaultIdle time.Duration
	onRelease   func(sessionID string)
	log         *slog.Logger
	pool        *WarmPool
	reaper      *Reaper
	sessionEnv  func(sessionID string) map[string]string

	mu       sync.Mutex
	sessions map[string]*session
	loop     context.CancelFunc
	loopDone chan struct{}
}

// session is one entry; ready is closed once the sandbox is started (or failed).
type session struct {
	sb    Sandbox
	ready chan struct{}
	err   error
}

// ManagerOption configures a SessionManager.
type ManagerOption func(*SessionManager)

// WithMaxSessions caps the open sessions; at the cap a new id gets *SessionLimitError while
// existing ids are still served. Zero means no cap.
func WithMaxSessions(n int) ManagerOption { return func(m *SessionManager) { m.maxSessions = n } }

// WithDefaultIdleTimeout is the idle timeout for sandboxes that do not report one (default 1 h).
func WithDefaultIdleTimeout(d time.Duration) ManagerOption {
	return func(m *SessionManager) { m.defaultIdle = d }
}

// WithOnRelease calls fn after a session's sandbox is stopped, outside the manager's lock.
func WithOnRelease(fn func(sessionID string)) ManagerOption {
	return func(m *SessionManager) { m.onRelease = fn }
}

// WithManagerLogger sets the logger (default slog.Default()).
func WithManagerLogger(l *slog.Logger) ManagerOption { return func(m *SessionManager) { m.log = l } }

// WithWarmPool makes new sessions claim a ready pod from pool (milliseconds) before falling back
// to the factory (a cold start). The manager closes the pool on Shutdown.
func WithWarmPool(pool *WarmPool) ManagerOption { return func(m *SessionManager) { m.pool = pool } }

// WithSessionEnv gives each session's sandbox environment variables of its own (an API key, the
// user's name), bound when a warm pod is claimed. Cold starts get them through the factory's
// options; KubernetesFactory does this for you when this option is set.
func WithSessionEnv(fn func(sessionID string) map[string]string) ManagerOption {
	return func(m *SessionManager) { m.sessionEnv = fn }
}

// WithReaper makes the cleanup loop also delete expired managed pods in the reaper's namespace,
// including pods left behind by processes that are gone.
func WithReaper(r *Reaper) ManagerOption { return func(m *SessionManager) { m.reaper = r } }

// NewSessionManager returns a manager that makes sandboxes with factory.
func NewSessionManager(factory Factory, opts ...ManagerOption) *SessionManager {
	m := &SessionManager{factory: factory, defaultIdle: time.Hour, sessions: map[string]*session{}}
	for _, o := range opts {
		o(m)
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	return m
}

// KubernetesFactory returns a Factory making a KubernetesPodSandbox for image per session, with the
// session id as sandbox id (so the pod name is deterministic and another replica adopts it) and
// the manager's per-session env (WithSessionEnv) added to the pod's.
func KubernetesFactory(image string, opts ...Option) Factory {
	return func(ctx context.Context, id string) (Sandbox, error) {
		all := append(append([]Option{}, opts...), WithSandboxID(id))
		if env := sessionEnvFrom(ctx); len(env) > 0 {
			all = append(all, func(c *config) error {
				merged := maps.Clone(c.env)
				if merged == nil {
					merged = map[string]string{}
				}
				maps.Copy(merged, env)
				c.env = merged
				return nil
			})
		}
		return NewKubernetesPodSandbox(image, all...)
	}
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

// GetOrCreate returns the session's sandbox, creating and starting it if needed. Exactly one
// sandbox is made per id however many goroutines ask at once; callers that joined a creation that
// failed get its error. A live sandbox is returned without
// any API request; a dead one is stopped and replaced; one whose Start fails is stopped and not
// kept. Every call counts as activity.
func (m *SessionManager) GetOrCreate(ctx context.Context, id string) (Sandbox, error) {
	for {
		m.mu.Lock()
		e, ok := m.sessions[id]
		if !ok {
			if m.maxSessions > 0 && len(m.sessions) >= m.maxSessions {
				m.mu.Unlock()
				return nil, &SessionLimitError{Limit: m.maxSessions}
			}
			e = &session{ready: make(chan struct{})}
			m.sessions[id] = e
			m.mu.Unlock()
			m.create(ctx, id, e)
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
		}
		m.mu.Unlock()
		m.log.Info("session sandbox is dead; replacing it", "session", id)
		go func() { _ = e.sb.Stop(context.WithoutCancel(ctx)) }()
	}
}

// create fills e: adopt or claim a pod, else make one with the factory and start it.
func (m *SessionManager) create(ctx context.Context, id string, e *session) {
	defer close(e.ready)
	var sb Sandbox
	var err error
	if m.pool != nil {
		sb, err = m.pool.claimFor(ctx, id, m.envFor(id))
		if err != nil && !errors.Is(err, ErrPoolEmpty) {
			m.log.Warn("warm pool claim failed; starting a cold sandbox", "session", id, "err", err)
		}
	}
	if sb == nil {
		sb, err = m.factory(withSessionEnv(ctx, m.envFor(id)), id)
		if err == nil {
			if err = sb.Start(ctx); err != nil {
				_ = sb.Stop(context.WithoutCancel(ctx))
			}
		}
	}
	if err != nil {
		e.err = err
		m.mu.Lock()
		delete(m.sessions, id)
		m.mu.Unlock()
		return
	}
	sb.Touch()
	e.sb = sb
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

// StartCleanupLoop runs CleanupIdle (and the reaper, if any) every interval in a goroutine until
// ctx is done or Shutdown is called. Errors and panics are logged and the loop goes on.
func (m *SessionManager) StartCleanupLoop(ctx context.Context, interval time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.loop != nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	m.loop, m.loopDone = cancel, done
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				m.sweep(ctx)
			}
		}
	}()
}

func (m *SessionManager) sweep(ctx context.Context) {
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("cleanup loop recovered from a panic", "panic", r)
		}
	}()
	n, err := m.CleanupIdle(ctx, 0)
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

// StopCleanupLoop stops the loop started by StartCleanupLoop and waits for it.
func (m *SessionManager) StopCleanupLoop() {
	m.mu.Lock()
	cancel, done := m.loop, m.loopDone
	m.loop, m.loopDone = nil, nil
	m.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// Shutdown stops the cleanup loop, releases every session concurrently, closes the warm pool, and
// returns how many sessions it released.
func (m *SessionManager) Shutdown(ctx context.Context) (int, error) {
	m.StopCleanupLoop()
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
		if err := m.pool.Close(ctx); err != nil {
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
