package podsandbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memSandbox is an in-memory Sandbox for the manager's logic (the real one is covered by the e2e
// suite). Only lifecycle and activity matter here.
type memSandbox struct {
	id       string
	idle     time.Duration
	last     atomic.Int64
	alive    atomic.Bool
	startErr error
	stopErr  error
	stops    atomic.Int32
	FileSystem
	Executor
}

func (m *memSandbox) ID() string { return m.id }
func (m *memSandbox) Start(context.Context) error {
	if m.startErr != nil {
		return m.startErr
	}
	m.alive.Store(true)
	return nil
}
func (m *memSandbox) Stop(context.Context) error {
	m.stops.Add(1)
	m.alive.Store(false)
	return m.stopErr
}
func (m *memSandbox) IsAlive(context.Context) bool { return m.alive.Load() }
func (m *memSandbox) LastActivity() time.Time      { return time.Unix(0, m.last.Load()) }
func (m *memSandbox) Touch()                       { m.last.Store(time.Now().UnixNano()) }
func (m *memSandbox) IdleTimeout() time.Duration   { return m.idle }

type memFactory struct {
	mu      sync.Mutex
	made    map[string][]*memSandbox
	calls   atomic.Int32
	delay   time.Duration
	failIDs map[string]error
	idle    time.Duration
	stopErr error
}

func (f *memFactory) make(_ context.Context, id string) (Sandbox, error) {
	f.calls.Add(1)
	time.Sleep(f.delay)
	sb := &memSandbox{id: id, idle: f.idle, startErr: f.failIDs[id], stopErr: f.stopErr}
	sb.Touch()
	f.mu.Lock()
	if f.made == nil {
		f.made = map[string][]*memSandbox{}
	}
	f.made[id] = append(f.made[id], sb)
	f.mu.Unlock()
	return sb, nil
}

// newManager returns a manager over f's in-memory sandboxes, shut down when the test ends.
func newManager(t testing.TB, f *memFactory, opts ...ManagerOption) *SessionManager {
	t.Helper()
	m, err := NewSessionManager(FactoryFunc(f.make), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = m.Shutdown(context.Background()) })
	return m
}

func TestGetOrCreateOnePerID(t *testing.T) {
	f := &memFactory{delay: 20 * time.Millisecond}
	m := newManager(t, f)
	var wg sync.WaitGroup
	got := make([]Sandbox, 1000)
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sb, err := m.GetOrCreate(context.Background(), fmt.Sprintf("s%02d", i%50))
			if err != nil {
				t.Error(err)
			}
			got[i] = sb
		}()
	}
	wg.Wait()
	if n := f.calls.Load(); n != 50 {
		t.Errorf("%d sandboxes made for 50 ids", n)
	}
	for i := range got {
		if got[i] != got[i%50] {
			t.Fatalf("goroutine %d got a different sandbox for the same id", i)
		}
	}
	if m.Len() != 50 || !m.Has("s07") || m.Has("nope") {
		t.Errorf("Len %d", m.Len())
	}
}

func TestDeadSandboxReplaced(t *testing.T) {
	f := &memFactory{}
	m := newManager(t, f)
	ctx := context.Background()
	a, _ := m.GetOrCreate(ctx, "x")
	a.(*memSandbox).alive.Store(false)
	b, err := m.GetOrCreate(ctx, "x")
	if err != nil || b == a {
		t.Fatalf("dead sandbox not replaced: %v", err)
	}
	time.Sleep(20 * time.Millisecond)
	if a.(*memSandbox).stops.Load() != 1 {
		t.Error("the dead sandbox was not stopped")
	}
}

func TestFailedStartNotRegistered(t *testing.T) {
	boom := errors.New("boom")
	f := &memFactory{failIDs: map[string]error{"bad": boom}}
	m := newManager(t, f)
	if _, err := m.GetOrCreate(context.Background(), "bad"); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	if m.Has("bad") || f.made["bad"][0].stops.Load() != 1 {
		t.Error("a sandbox whose Start failed was kept or not stopped")
	}
}

func TestSessionLimit(t *testing.T) {
	f := &memFactory{}
	m := newManager(t, f, WithMaxSessions(2))
	ctx := context.Background()
	m.GetOrCreate(ctx, "a")
	m.GetOrCreate(ctx, "b")
	_, err := m.GetOrCreate(ctx, "c")
	var le *SessionLimitError
	if !errors.As(err, &le) || !errors.Is(err, ErrSessionLimit) ||
		err.Error() != "Session limit of 2 reached. Release an idle session before opening another." {
		t.Fatalf("err %v", err)
	}
	if _, err := m.GetOrCreate(ctx, "a"); err != nil {
		t.Errorf("existing id refused at the limit: %v", err)
	}
	if ok, _ := m.Release(ctx, "a"); !ok {
		t.Error("release")
	}
	if _, err := m.GetOrCreate(ctx, "c"); err != nil {
		t.Errorf("after release: %v", err)
	}
}

func TestCleanupIdle(t *testing.T) {
	f := &memFactory{}
	var released []string
	var mu sync.Mutex
	m := newManager(t, f, WithDefaultIdleTimeout(time.Hour), WithOnRelease(func(id string) {
		mu.Lock()
		released = append(released, id)
		mu.Unlock()
	}))
	ctx := context.Background()
	old, _ := m.GetOrCreate(ctx, "old")
	short, _ := m.GetOrCreate(ctx, "short")
	kept, _ := m.GetOrCreate(ctx, "kept")
	old.(*memSandbox).last.Store(time.Now().Add(-2 * time.Hour).UnixNano())
	short.(*memSandbox).idle = time.Minute
	short.(*memSandbox).last.Store(time.Now().Add(-2 * time.Minute).UnixNano())
	kept.(*memSandbox).last.Store(time.Now().Add(-2 * time.Hour).UnixNano())
	if !m.KeepAlive("kept") || m.KeepAlive("nope") {
		t.Error("KeepAlive")
	}
	n, err := m.CleanupIdle(ctx, 0)
	if n != 2 || err != nil || m.Has("old") || m.Has("short") || !m.Has("kept") {
		t.Errorf("released %d (%v), sessions %v", n, err, m.Sessions())
	}
	if len(released) != 2 {
		t.Errorf("on-release hook ran for %v", released)
	}
	if n, _ := m.CleanupIdle(ctx, time.Nanosecond); n != 1 {
		t.Errorf("explicit maxIdle: %d", n)
	}
}

func TestCleanupLoopSurvivesErrors(t *testing.T) {
	f := &memFactory{idle: time.Millisecond, stopErr: errors.New("injected stop failure")}
	m := newManager(t, f, WithCleanupInterval(5*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := m.GetOrCreate(ctx, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Second)
		for m.Has(fmt.Sprint(i)) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the loop stopped releasing after an error", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

func TestShutdown(t *testing.T) {
	f := &memFactory{}
	m := newManager(t, f)
	ctx := context.Background()
	for i := range 10 {
		m.GetOrCreate(ctx, fmt.Sprint(i))
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := m.Shutdown(ctx)
	if n != 10 || err != nil || m.Len() != 0 {
		t.Errorf("shutdown %d %v", n, err)
	}
}

// BenchmarkGetOrCreateLive measures the hot path: a live session, no API request.
func BenchmarkGetOrCreateLive(b *testing.B) {
	f := &memFactory{}
	m := newManager(b, f)
	ctx := context.Background()
	m.GetOrCreate(ctx, "s")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.GetOrCreate(ctx, "s"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCleanupSweep10k measures one idle sweep over 10 000 sessions (none idle).
func BenchmarkCleanupSweep10k(b *testing.B) {
	f := &memFactory{}
	m := newManager(b, f)
	ctx := context.Background()
	for i := range 10_000 {
		m.GetOrCreate(ctx, fmt.Sprint(i))
	}
	b.ResetTimer()
	for b.Loop() {
		if n, _ := m.CleanupIdle(ctx, 0); n != 0 {
			b.Fatal("released")
		}
	}
}
