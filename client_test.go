package podsandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
)

// TestClientSharesOneWatch: sandboxes made from one Client share one pod watch per namespace,
// which stops when the last of them stops; Close leaves nothing running.
func TestClientSharesOneWatch(t *testing.T) {
	cs := fakeClient()
	kubelet(cs, corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}, corev1.PodRunning)
	c := fakeClientFor(t, cs)
	f, err := c.Factory("img", WithMode(ModeAPI), WithNamespace("ns1"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var sbs []Sandbox
	for i := range 5 {
		sb, err := f.NewSandbox(ctx, fmt.Sprint("user-", i))
		if err != nil {
			t.Fatal(err)
		}
		if err := sb.Start(ctx); err != nil {
			t.Fatal(err)
		}
		sbs = append(sbs, sb)
	}
	watches := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == "watch" && a.GetResource().Resource == "pods" {
			watches++
		}
	}
	if watches != 1 || c.watches() != 1 {
		t.Errorf("5 sandboxes opened %d pod watches (%d running), want 1", watches, c.watches())
	}
	for _, sb := range sbs {
		if err := sb.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if c.watches() != 0 {
		t.Errorf("%d watches still running after every sandbox stopped", c.watches())
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NewSandbox("img", WithMode(ModeAPI)); err != nil {
		t.Fatal(err) // making is fine; starting is refused
	}
	sb, _ := c.NewSandbox("img", WithMode(ModeAPI))
	if err := sb.Start(ctx); !errors.Is(err, ErrClientClosed) {
		t.Errorf("Start after Close: %v", err)
	}
}

// TestManagerRefuses: contradictory manager options are errors, not panics in a goroutine.
func TestManagerRefuses(t *testing.T) {
	f := FactoryFunc((&memFactory{}).make)
	for name, opts := range map[string][]ManagerOption{
		"cleanup interval 0":     {WithCleanupInterval(0)},
		"negative max sessions":  {WithMaxSessions(-1)},
		"idle 0":                 {WithDefaultIdleTimeout(0)},
		"pool size 0":            {WithWarmPool(0)},
		"pool without k8s":       {WithWarmPool(2)},
		"nil reaper":             {WithReaper(nil)},
		"pool name not a label":  {WithWarmPool(1, WithPoolName("no spaces"))},
		"pool ttl below minimum": {WithWarmPool(1, WithPoolTTL(time.Millisecond))},
		"negative refill delay":  {WithWarmPool(1, WithPoolRefillDelay(-time.Second))},
		"refill delay over 1m":   {WithWarmPool(1, WithPoolRefillDelay(time.Hour))},
	} {
		if _, err := NewSessionManager(f, opts...); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := NewSessionManager(nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("nil factory: %v", err)
	}
}

// TestGetOrCreateDetachedFromCaller: a caller that gives up does not fail the creation it started;
// the others get the sandbox, and so does the next call.
func TestGetOrCreateDetachedFromCaller(t *testing.T) {
	release := make(chan struct{})
	f := &memFactory{}
	m := newManager(t, f)
	m.factory = FactoryFunc(func(ctx context.Context, id string) (Sandbox, error) {
		<-release
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return f.make(ctx, id)
	})
	first, cancelFirst := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var firstErr, secondErr error
	var got Sandbox
	wg.Go(func() { _, firstErr = m.GetOrCreate(first, "s") })
	for !m.Has("s") {
		time.Sleep(time.Millisecond)
	}
	wg.Go(func() { got, secondErr = m.GetOrCreate(context.Background(), "s") })
	cancelFirst()
	close(release)
	wg.Wait()
	if !errors.Is(firstErr, context.Canceled) {
		t.Errorf("the first caller: %v", firstErr)
	}
	if secondErr != nil || got == nil {
		t.Fatalf("the joined caller got the first caller's cancellation: %v", secondErr)
	}
	if again, err := m.GetOrCreate(context.Background(), "s"); err != nil || again != got {
		t.Errorf("next call: %v", err)
	}
	if f.calls.Load() != 1 {
		t.Errorf("%d creations", f.calls.Load())
	}
}

// TestShutdownCancelsCreation: Shutdown does not wait for a creation stuck on a slow start; the
// creation's context is cancelled and later calls are refused.
func TestShutdownCancelsCreation(t *testing.T) {
	m := newManager(t, &memFactory{})
	started := make(chan struct{})
	m.factory = FactoryFunc(func(ctx context.Context, id string) (Sandbox, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	errc := make(chan error, 1)
	go func() { _, err := m.GetOrCreate(context.Background(), "slow"); errc <- err }()
	<-started
	if _, err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("the waiting caller: %v", err)
	}
	if _, err := m.GetOrCreate(context.Background(), "x"); !errors.Is(err, ErrManagerClosed) {
		t.Errorf("after Shutdown: %v", err)
	}
}

// TestFactoryPanicIsAnError: a panicking factory fails the session, not the process.
func TestFactoryPanicIsAnError(t *testing.T) {
	m := newManager(t, &memFactory{})
	m.factory = FactoryFunc(func(context.Context, string) (Sandbox, error) { panic("boom") })
	if _, err := m.GetOrCreate(context.Background(), "p"); err == nil || m.Has("p") {
		t.Errorf("panic: %v, kept %v", err, m.Has("p"))
	}
}

// TestClientOptions: QPS is checked and applied; a sandbox logs through its own logger, else its
// Client's.
func TestClientOptions(t *testing.T) {
	if _, err := NewClient(&rest.Config{Host: "https://127.0.0.1:1"}, WithQPS(0, 1)); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("zero QPS: %v", err)
	}
	c, err := NewClient(&rest.Config{Host: "https://127.0.0.1:1"}, WithQPS(7, 9))
	if err != nil {
		t.Fatal(err)
	}
	if cfg := c.RESTConfig(); cfg.QPS != 7 || cfg.Burst != 9 {
		t.Errorf("QPS %v burst %d", cfg.QPS, cfg.Burst)
	}
	if cfg := c.RESTConfig(); cfg == c.rest {
		t.Error("RESTConfig must return a copy")
	}
	_ = c.Close(t.Context())

	var clientLog, sbLog bytes.Buffer
	cs := fakeClient()
	kubelet(cs, corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}, corev1.PodRunning)
	lc, err := NewClient(&rest.Config{Host: "https://127.0.0.1:1"}, WithClientset(cs),
		WithClientLogger(slog.New(slog.NewTextHandler(&clientLog, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close(t.Context())
	ctx := t.Context()
	a, _ := lc.NewSandbox("img", WithMode(ModeAPI), WithSandboxID("by-client"))
	b, _ := lc.NewSandbox("img", WithMode(ModeAPI), WithSandboxID("by-own"), WithLogger(slog.New(slog.NewTextHandler(&sbLog, nil))))
	for _, sb := range []*KubernetesPodSandbox{a, b} {
		if err := sb.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := sb.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(clientLog.String(), "sandbox=by-client") || strings.Contains(clientLog.String(), "by-own") {
		t.Errorf("client log: %s", clientLog.String())
	}
	if !strings.Contains(sbLog.String(), "sandbox=by-own") {
		t.Errorf("sandbox log: %s", sbLog.String())
	}
}

// TestPoolSpecHash: replicas share warm pods only when their pod specs hash alike: the hash is
// stable for one spec (HTTP mode's random Secret name left out), ignores labels, and changes
// with anything that changes the pod.
func TestPoolSpecHash(t *testing.T) {
	c := fakeClientFor(t, fakeClient())
	hash := func(image string, opts ...Option) string {
		t.Helper()
		f, err := c.Factory(image, opts...)
		if err != nil {
			t.Fatal(err)
		}
		h, err := specHash(f)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	base := hash("img")
	tests := []struct {
		name  string
		image string
		opts  []Option
		same  bool
	}{
		{"same spec again", "img", nil, true},
		{"labels", "img", []Option{WithLabels(map[string]string{"replica": "2"})}, true},
		{"image", "img:2", nil, false},
		{"mode", "img", []Option{WithMode(ModeAPI)}, false},
		{"env", "img", []Option{WithEnv(map[string]string{"A": "1"})}, false},
		{"resources", "img", []Option{WithResources(corev1.ResourceRequirements{})}, false},
	}
	for _, tt := range tests {
		if got := hash(tt.image, tt.opts...); (got == base) != tt.same {
			t.Errorf("%s: hash %s, base %s, want same=%v", tt.name, got, base, tt.same)
		}
	}
}

// TestPoolSharedByReplicas: two pools of one name on two Clients (replicas) over one API. B, with
// one warm pod of its own, gets three sessions from A's pods too; A's close leaves the pods B
// claimed alone and deletes only its pods still warm. (The real cluster proves the
// resourceVersion races in TestWarmPoolSharedByReplicas; this runs the bookkeeping under -race.)
func TestPoolSharedByReplicas(t *testing.T) {
	cs := fakeClient()
	kubelet(cs, corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}, corev1.PodRunning)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	replica := func(size int) *SessionManager {
		f, err := fakeClientFor(t, cs).Factory("img", WithMode(ModeAPI), WithNamespace("ns"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := NewSessionManager(f, WithWarmPool(size, WithPoolName("shared")))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = m.Shutdown(context.Background()) })
		return m
	}
	podNames := func() map[string]bool {
		l, err := cs.CoreV1().Pods("ns").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, p := range l.Items {
			names[p.Name] = true
		}
		return names
	}
	waitReady := func(m *SessionManager, n int) {
		t.Helper()
		for m.Pool().Ready() < n {
			if ctx.Err() != nil {
				t.Fatalf("pool has %d ready, want %d", m.Pool().Ready(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	a := replica(2)
	waitReady(a, 2)
	aPods := podNames()
	b := replica(1)
	waitReady(b, 1)
	// B's refills never become Ready now, so its second and third sessions must be A's pods.
	cs.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("no more pods")
	})
	held := map[string]string{}
	for i := range 3 {
		sb, err := b.GetOrCreate(ctx, fmt.Sprint("b-", i))
		if err != nil {
			t.Fatal(err)
		}
		held[sb.(*KubernetesPodSandbox).PodName()] = fmt.Sprint("b-", i)
	}
	for pod := range aPods {
		if held[pod] == "" {
			t.Errorf("A's warm pod %s was not claimed by B (B holds %v)", pod, held)
		}
	}
	// A's Shutdown decides from its watch cache, then deletes with a resourceVersion precondition
	// that the real API server enforces and the fake clientset ignores (it keeps no
	// resourceVersions). So wait until A's cache shows the claims: under load its watch lags B's
	// updates, and the fake would then delete B's pods where a real cluster refuses.
	a.Pool().mu.Lock()
	members := slices.Clone(a.Pool().ready)
	a.Pool().mu.Unlock()
	for _, sb := range members {
		for sb.stillWarm() {
			if ctx.Err() != nil {
				t.Fatalf("A's watch never saw pod %s claimed", sb.PodName())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if _, err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	left := podNames()
	for pod, id := range held {
		if !left[pod] {
			t.Errorf("A's Shutdown deleted pod %s of B's session %s", pod, id)
		}
	}
}

// TestPoolRefillDelay: a claim that leaves a warm pod ready waits for the refill delay before it
// starts the replacement; a claim that empties the pool starts every replacement at once, also the
// one still waiting.
func TestPoolRefillDelay(t *testing.T) {
	cs := fakeClient()
	kubelet(cs, corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}, corev1.PodRunning)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var creates atomic.Int32
	cs.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		creates.Add(1)
		return false, nil, nil
	})
	f, err := fakeClientFor(t, cs).Factory("img", WithMode(ModeAPI), WithNamespace("ns"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewSessionManager(f, WithWarmPool(2, WithPoolRefillDelay(time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = m.Shutdown(context.Background()) })
	waitReady := func(n int) {
		t.Helper()
		for m.Pool().Ready() < n {
			if ctx.Err() != nil {
				t.Fatalf("pool has %d ready, want %d (%d pods created)", m.Pool().Ready(), n, creates.Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitReady(2)
	if _, err := m.GetOrCreate(ctx, "first"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the refill loop runs; a replacement would be created by now
	if n := creates.Load(); n != 2 {
		t.Fatalf("%d pods created after the first claim, want 2: the replacement should wait a minute", n)
	}
	if _, err := m.GetOrCreate(ctx, "second"); err != nil {
		t.Fatal(err)
	}
	waitReady(2) // both replacements, without the minute
	if n := creates.Load(); n != 4 {
		t.Errorf("%d pods created, want 4", n)
	}
}

// TestReapDryRun: with DryRun a Reap lists the expired pods and deletes none; without, it deletes
// exactly those, and never a pod it does not manage.
func TestReapDryRun(t *testing.T) {
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	pod := func(name, expires string, managed bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: "uid-" + types.UID(name),
			Labels: map[string]string{}, Annotations: map[string]string{AnnotationExpiresAt: expires, AnnotationSandboxID: name}}}
		if managed {
			p.Labels[LabelManagedBy] = ManagedByValue
		}
		return p
	}
	cs := fakeClient(pod("old", past, true), pod("fresh", future, true), pod("foreign", past, false))
	r := NewReaper(cs, "ns", nil)
	r.DryRun = true
	res, err := r.Reap(t.Context())
	if err != nil || res.Pods != 1 || len(res.Reaped) != 1 || res.Reaped[0].ID != "old" || !strings.HasPrefix(res.Reaped[0].Why, "idle since") {
		t.Fatalf("dry run: %+v %v", res, err)
	}
	if l, _ := cs.CoreV1().Pods("ns").List(t.Context(), metav1.ListOptions{}); len(l.Items) != 3 {
		t.Fatalf("the dry run deleted pods: %d left", len(l.Items))
	}
	r.DryRun = false
	if res, err := r.Reap(t.Context()); err != nil || res.Pods != 1 {
		t.Fatalf("reap: %+v %v", res, err)
	}
	l, _ := cs.CoreV1().Pods("ns").List(t.Context(), metav1.ListOptions{})
	var left []string
	for _, p := range l.Items {
		left = append(left, p.Name)
	}
	if slices.Sort(left); !slices.Equal(left, []string{"foreign", "fresh"}) {
		t.Errorf("left %v", left)
	}
}

// TestAttachRefuses: Attach finds no sandbox for an unknown id (ErrNoSandbox) and refuses a pod
// podsandbox did not make.
func TestAttachRefuses(t *testing.T) {
	foreign := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: PodName("theirs"), Namespace: "ns"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img"}}}}
	c := fakeClientFor(t, fakeClient(foreign))
	if _, err := c.Attach(t.Context(), "ns", "nobody"); !errors.Is(err, ErrNoSandbox) {
		t.Errorf("unknown id: %v", err)
	}
	var ce *ConflictError
	if _, err := c.Attach(t.Context(), "ns", "theirs"); !errors.As(err, &ce) {
		t.Errorf("foreign pod: %v", err)
	}
	if err := c.Remove(t.Context(), "ns", "theirs"); !errors.As(err, &ce) {
		t.Errorf("Remove of a foreign pod: %v", err)
	}
	if err := c.Remove(t.Context(), "ns", "nobody"); !errors.Is(err, ErrNoSandbox) {
		t.Errorf("Remove of an unknown id: %v", err)
	}
}

// TestRemoveFindsClaimedPod: a warm pod claimed for a session keeps its pool name; Remove finds it
// by the session's sandbox-id label and annotation and deletes it, and only it.
func TestRemoveFindsClaimedPod(t *testing.T) {
	claimed := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pab-sandbox-pool-default-abc", Namespace: "ns", UID: "u1",
		Labels:      map[string]string{LabelManagedBy: ManagedByValue, LabelSandboxID: "user-7", LabelPoolState: "claimed"},
		Annotations: map[string]string{AnnotationSandboxID: "user-7"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: ContainerName, Image: "img"}}}}
	bystander := claimed.DeepCopy()
	bystander.Name, bystander.UID = "pab-sandbox-pool-default-def", "u2"
	bystander.Labels[LabelSandboxID], bystander.Annotations[AnnotationSandboxID] = "user-8", "user-8"
	cs := fakeClient(claimed, bystander)
	c := fakeClientFor(t, cs)
	if err := c.Remove(t.Context(), "ns", "user-7"); err != nil {
		t.Fatal(err)
	}
	l, _ := cs.CoreV1().Pods("ns").List(t.Context(), metav1.ListOptions{})
	if len(l.Items) != 1 || l.Items[0].Name != bystander.Name {
		t.Errorf("pods left: %v", l.Items)
	}
}
