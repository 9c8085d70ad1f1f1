//go:build e2e

package podsandbox_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/internal/e2e"
)

func managerOpts(ns string, extra ...podsandbox.Option) []podsandbox.Option {
	return append([]podsandbox.Option{
		podsandbox.WithNamespace(ns), podsandbox.WithImagePullPolicy("Never"), podsandbox.WithResources(denseResources),
	}, extra...)
}

// newFactory returns a factory of image on a Client of the test's own (closed when it ends).
func newFactory(t *testing.T, image string, opts ...podsandbox.Option) *podsandbox.KubernetesFactory {
	t.Helper()
	f, err := testClient(t, e2e.Env(t).Config).Factory(image, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// newManager returns a manager over f, shut down when the test ends (before its Client closes).
func newManager(t *testing.T, f podsandbox.Factory, opts ...podsandbox.ManagerOption) *podsandbox.SessionManager {
	t.Helper()
	m, err := podsandbox.NewSessionManager(f, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := m.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return m
}

func managedPods(t *testing.T, ns, selector string) []corev1.Pod {
	t.Helper()
	return e2e.LivePods(t, ns, selector)
}

// TestManagerConcurrent: 1000 goroutines over 50 ids make exactly 50 pods, all usable.
// Not parallel: it measures 50 pods starting at once on this machine.
func TestManagerConcurrent(t *testing.T) {
	ns := e2e.CreateNamespace(t, "psbx-many")
	m := newManager(t, newFactory(t, e2e.ImageServer, managerOpts(ns, podsandbox.WithStartupTimeout(90*time.Second))...))
	ctx := ctxT(t, 3*time.Minute)
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int32
	got := make([]podsandbox.Sandbox, 1000)
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sb, err := m.GetOrCreate(ctx, fmt.Sprintf("user-%02d", i%50))
			if err != nil {
				failed.Add(1)
				t.Error(err)
				return
			}
			got[i] = sb
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}
	var ewg sync.WaitGroup
	for i := range 50 {
		ewg.Add(1)
		go func() {
			defer ewg.Done()
			r, err := got[i].Execute(ctx, "echo $((40+2))")
			if err != nil || r.Stdout != "42\n" {
				t.Errorf("session %d: %+v %v", i, r, err)
			}
		}()
	}
	ewg.Wait()
	t.Logf("50 sessions from 1000 concurrent GetOrCreate calls: all usable after %s", time.Since(start).Round(time.Millisecond))
	for i := range got {
		if got[i] != got[i%50] {
			t.Fatalf("caller %d got another sandbox for the same id", i)
		}
	}
	if n := len(managedPods(t, ns, "")); n != 50 {
		t.Errorf("%d pods for 50 sessions", n)
	}
	n, err := m.Shutdown(ctx)
	if n != 50 || err != nil {
		t.Errorf("Shutdown released %d: %v", n, err)
	}
	if n := len(managedPods(t, ns, "")); n != 0 {
		t.Errorf("%d pods left after Shutdown", n)
	}
}

// TestWarmPool: claims are fast and personalised, the pool refills, and an empty pool falls back
// to a cold start.
func TestWarmPool(t *testing.T) {
	t.Parallel()
	env := e2e.Env(t)
	for _, mode := range []podsandbox.Mode{podsandbox.ModeHTTP, podsandbox.ModeAPI} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			image := modeImage[mode]
			f := newFactory(t, image, managerOpts(env.Namespace, podsandbox.WithMode(mode))...)
			m := newManager(t, f, podsandbox.WithWarmPool(2, podsandbox.WithPoolName("wp-"+string(mode))),
				podsandbox.WithSessionEnv(func(id string) map[string]string { return map[string]string{"WHO": id} }))
			ctx := ctxT(t, 3*time.Minute)
			if err := m.Start(ctx); err != nil {
				t.Fatal(err)
			}
			pool := m.Pool()
			waitFor(t, "2 warm pods", 60*time.Second, func() bool { return pool.Ready() == 2 })
			if n := len(managedPods(t, env.Namespace, podsandbox.LabelPool+"=wp-"+string(mode))); n != 2 {
				t.Errorf("%d pool pods visible by label", n)
			}

			// A claim with per-session env, straight from the pool.
			start := time.Now()
			sb, err := pool.Claim(ctx, "claimed-"+string(mode), map[string]string{"SESSION_SECRET": "s3cret"})
			if err != nil {
				t.Fatal(err)
			}
			r, err := sb.Execute(ctx, `printf %s "$SESSION_SECRET"`)
			claimTime := time.Since(start)
			if err != nil || r.Stdout != "s3cret" {
				t.Fatalf("after claim: %+v %v", r, err)
			}
			t.Logf("claim + first command: %s (make bench measures it)", claimTime.Round(time.Microsecond))
			pod, err := env.Client.CoreV1().Pods(env.Namespace).Get(ctx, sb.PodName(), metav1.GetOptions{})
			if err != nil || pod.Labels[podsandbox.LabelPoolState] != "claimed" || pod.Annotations[podsandbox.AnnotationSandboxID] != "claimed-"+string(mode) || sb.ID() != "claimed-"+string(mode) {
				t.Errorf("claimed pod: %v %v, id %q", pod.Labels, err, sb.ID())
			}
			defer sb.Stop(ctx)

			// Another process attaches to the claimed session by its id (its pod keeps the pool's
			// name), and can remove it.
			other := testClient(t, env.Config)
			att, err := other.Attach(ctx, env.Namespace, "claimed-"+string(mode))
			if err != nil {
				t.Fatalf("Attach to a claimed session: %v", err)
			}
			if att.PodName() != sb.PodName() {
				t.Errorf("attached to pod %s, the session's is %s", att.PodName(), sb.PodName())
			}
			if r, err := att.Execute(ctx, "echo attached"); err != nil || r.Stdout != "attached\n" {
				t.Errorf("attached: %+v %v", r, err)
			}
			if err := att.Stop(ctx); err != nil {
				t.Error(err)
			}
			if !sb.IsAlive(ctx) {
				t.Error("the attached sandbox's Stop deleted the session's pod")
			}

			// The pool refills.
			waitFor(t, "refill", 60*time.Second, func() bool { return pool.Ready() == 2 })

			// Exhaustion: two sessions drain the pool, the third starts cold.
			for i := range 3 {
				s, err := m.GetOrCreate(ctx, fmt.Sprintf("%s-s%d", mode, i))
				if err != nil {
					t.Fatalf("session %d: %v", i, err)
				}
				want := fmt.Sprintf("%s-s%d\n", mode, i) // per-session env, warm (0, 1) or cold (2)
				if r, err := s.Execute(ctx, `echo "$WHO"`); err != nil || r.Stdout != want {
					t.Errorf("session %d: %+v %v, want %q", i, r, err, want)
				}
			}
		})
	}
}

// TestWarmPoolSharedByReplicas: two replicas (two Clients, two managers) with one pool name share
// their warm pods. Replica B, asked for more sessions at once than it has warm pods, claims
// replica A's; A never hands out a pod B claimed, and A's Shutdown leaves B's sessions running.
func TestWarmPoolSharedByReplicas(t *testing.T) {
	t.Parallel()
	env := e2e.Env(t)
	for _, mode := range []podsandbox.Mode{podsandbox.ModeHTTP, podsandbox.ModeAPI} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			ns := e2e.CreateNamespace(t, "psbx-shared-pool")
			ctx := ctxT(t, 4*time.Minute)
			who := podsandbox.WithSessionEnv(func(id string) map[string]string { return map[string]string{"WHO": id} })
			replica := func(size int) *podsandbox.SessionManager {
				f := newFactory(t, modeImage[mode], managerOpts(ns, podsandbox.WithMode(mode))...)
				m := newManager(t, f, podsandbox.WithWarmPool(size, podsandbox.WithPoolName("shared")), who)
				if err := m.Start(ctx); err != nil {
					t.Fatal(err)
				}
				return m
			}
			a := replica(2)
			waitFor(t, "A's 2 warm pods", 90*time.Second, func() bool { return a.Pool().Ready() == 2 })
			aPods := map[string]bool{}
			for _, p := range managedPods(t, ns, podsandbox.LabelPool+"=shared") {
				aPods[p.Name] = true
			}
			b := replica(1)
			waitFor(t, "B's warm pod", 90*time.Second, func() bool { return b.Pool().Ready() == 1 })

			// B gets three sessions at once with one warm pod of its own: at least one of the
			// others must come from A's pool (B refills one pod at a time).
			podOf := map[string]string{} // session -> pod
			var mu sync.Mutex
			var wg sync.WaitGroup
			for i := range 3 {
				wg.Go(func() {
					id := fmt.Sprintf("b-%d", i)
					sb, err := b.GetOrCreate(ctx, id)
					if err != nil {
						t.Errorf("B %s: %v", id, err)
						return
					}
					mu.Lock()
					podOf[id] = sb.(*podsandbox.KubernetesPodSandbox).PodName()
					mu.Unlock()
				})
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			fromA := 0
			for _, pod := range podOf {
				if aPods[pod] {
					fromA++
				}
			}
			if fromA == 0 {
				t.Fatalf("B claimed none of A's warm pods %v: %v", aPods, podOf)
			}
			t.Logf("B's sessions %v; %d from A's pool", podOf, fromA)

			// A now gets two sessions: never a pod B holds.
			for i := range 2 {
				id := fmt.Sprintf("a-%d", i)
				sb, err := a.GetOrCreate(ctx, id)
				if err != nil {
					t.Fatalf("A %s: %v", id, err)
				}
				podOf[id] = sb.(*podsandbox.KubernetesPodSandbox).PodName()
			}
			seen := map[string]string{}
			for id, pod := range podOf {
				if other, dup := seen[pod]; dup {
					t.Errorf("pod %s serves sessions %s and %s", pod, other, id)
				}
				seen[pod] = id
				p, err := env.Client.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
				if err != nil || p.Annotations[podsandbox.AnnotationSandboxID] != id {
					t.Errorf("pod %s of session %s: annotation %q, %v", pod, id, p.Annotations[podsandbox.AnnotationSandboxID], err)
				}
			}

			// A shuts down (its pool deletes only pods still warm); B's sessions keep working.
			if _, err := a.Shutdown(ctx); err != nil {
				t.Fatalf("A Shutdown: %v", err)
			}
			for i := range 3 {
				id := fmt.Sprintf("b-%d", i)
				sb, err := b.GetOrCreate(ctx, id)
				if err != nil {
					t.Fatalf("B %s after A's shutdown: %v", id, err)
				}
				if got := sb.(*podsandbox.KubernetesPodSandbox).PodName(); got != podOf[id] {
					t.Errorf("B %s moved from pod %s to %s: A's shutdown deleted it", id, podOf[id], got)
				}
				if r, err := sb.Execute(ctx, `echo "$WHO"`); err != nil || r.Stdout != id+"\n" {
					t.Errorf("B %s: %+v %v", id, r, err)
				}
			}
			if _, err := b.Shutdown(ctx); err != nil {
				t.Fatalf("B Shutdown: %v", err)
			}
			waitFor(t, "every pod deleted", 90*time.Second, func() bool { return len(managedPods(t, ns, "")) == 0 })
		})
	}
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReplacedAfterDeletion: a pod deleted behind the manager's back is replaced on the next
// GetOrCreate.
func TestReplacedAfterDeletion(t *testing.T) {
	t.Parallel()
	env := e2e.Env(t)
	m := newManager(t, newFactory(t, e2e.ImageServer, managerOpts(env.Namespace)...))
	ctx := ctxT(t, 2*time.Minute)
	a, err := m.GetOrCreate(ctx, "replace-me")
	if err != nil {
		t.Fatal(err)
	}
	name := a.(*podsandbox.KubernetesPodSandbox).PodName()
	old, _ := env.Client.CoreV1().Pods(env.Namespace).Get(ctx, name, metav1.GetOptions{})
	zero := int64(0)
	if err := env.Client.CoreV1().Pods(env.Namespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the watch to see the deletion", 10*time.Second, func() bool { return !a.IsAlive(ctx) })
	b, err := m.GetOrCreate(ctx, "replace-me")
	if err != nil {
		t.Fatal(err)
	}
	if b == a {
		t.Fatal("the dead sandbox was returned")
	}
	if r, err := b.Execute(ctx, "echo fresh"); err != nil || r.Stdout != "fresh\n" {
		t.Errorf("%+v %v", r, err)
	}
	cur, _ := env.Client.CoreV1().Pods(env.Namespace).Get(ctx, name, metav1.GetOptions{})
	if cur.UID == old.UID {
		t.Error("same pod")
	}
}

// TestTwoReplicasOnePod: two managers (replicas of one service) asking for the same new session at
// once end with one pod, which both use.
func TestTwoReplicasOnePod(t *testing.T) {
	t.Parallel()
	env := e2e.Env(t)
	ns := e2e.CreateNamespace(t, "psbx-replicas")
	ctx := ctxT(t, 2*time.Minute)
	var sbs [2]podsandbox.Sandbox
	var wg sync.WaitGroup
	for i := range 2 {
		// two replicas: two Clients, two managers
		m := newManager(t, newFactory(t, e2e.ImageServer, managerOpts(ns)...))
		wg.Add(1)
		go func() {
			defer wg.Done()
			sb, err := m.GetOrCreate(ctx, "shared-user")
			if err != nil {
				t.Errorf("replica %d: %v", i, err)
				return
			}
			sbs[i] = sb
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if n := len(managedPods(t, ns, "")); n != 1 {
		t.Errorf("%d pods", n)
	}
	if _, err := sbs[0].Write(ctx, "from0", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if ok, err := sbs[1].Exists(ctx, "from0"); !ok || err != nil {
		t.Errorf("replica 1 does not see replica 0's file: %v %v", ok, err)
	}
	_ = env
	sbs[0].Stop(ctx)
}

// flakyStop fails its first Stop: the cleanup loop must log it and go on.
type flakyStop struct {
	podsandbox.Sandbox
	failed atomic.Bool
}

func (f *flakyStop) Stop(ctx context.Context) error {
	if f.failed.CompareAndSwap(false, true) {
		return errors.New("injected stop failure")
	}
	return f.Sandbox.Stop(ctx)
}

// TestCleanupLoopReal: idle sessions are released by the loop, which survives an injected error.
func TestCleanupLoopReal(t *testing.T) {
	t.Parallel()
	env := e2e.Env(t)
	var first atomic.Pointer[flakyStop]
	base := newFactory(t, e2e.ImageBusybox, managerOpts(env.Namespace, podsandbox.WithMode(podsandbox.ModeAPI), podsandbox.WithIdleTimeout(time.Second))...)
	factory := func(ctx context.Context, id string) (podsandbox.Sandbox, error) {
		sb, err := base.NewSandbox(ctx, id)
		if err != nil || id != "idle-0" {
			return sb, err
		}
		f := &flakyStop{Sandbox: sb}
		first.Store(f)
		return f, nil
	}
	m := newManager(t, podsandbox.FactoryFunc(factory), podsandbox.WithCleanupInterval(200*time.Millisecond))
	ctx := ctxT(t, 2*time.Minute)
	var names []string
	for i := range 2 {
		sb, err := m.GetOrCreate(ctx, fmt.Sprintf("idle-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if f, ok := sb.(*flakyStop); ok {
			sb = f.Sandbox
		}
		names = append(names, sb.(*podsandbox.KubernetesPodSandbox).PodName())
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "idle sessions released", 30*time.Second, func() bool { return m.Len() == 0 })
	if f := first.Load(); f == nil || !f.failed.Load() {
		t.Fatal("the injected error did not happen")
	}
	// The first sandbox's Stop failed once, so its pod is still there; the other is gone.
	waitFor(t, "the second pod deleted", 30*time.Second, func() bool { return podGone(t, names[1]) })
	if podGone(t, names[0]) {
		t.Error("the pod whose Stop failed is gone: the injected failure did not bite")
	}
	first.Load().Sandbox.Stop(ctx)
}

// TestReaperAfterSIGKILL: a process makes sandboxes and is killed with SIGKILL; a fresh reaper in
// another process deletes them once they expire, and never touches pods it does not manage.
func TestReaperAfterSIGKILL(t *testing.T) {
	t.Parallel()
	env := e2e.Env(t)
	ns := e2e.CreateNamespace(t, "psbx-reap")
	ctx := ctxT(t, 5*time.Minute)
	foreign := e2e.Pod("not-ours", e2e.ImageBusybox, "sleep", "600")
	foreign.Namespace = ns
	if _, err := env.Client.CoreV1().Pods(ns).Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "PODSANDBOX_REAPER_CHILD="+ns, "KUBECONFIG="+env.Kubeconfig)
	out, _ := child.StdoutPipe()
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "READY ") {
		child.Process.Kill()
		t.Fatalf("child: %q %v", line, err)
	}
	names := strings.Fields(strings.TrimPrefix(line, "READY "))
	if err := child.Process.Kill(); err != nil { // SIGKILL: no Stop, no cleanup
		t.Fatal(err)
	}
	child.Wait()
	if n := len(managedPods(t, ns, "")); n != 2 {
		t.Fatalf("%d managed pods after the kill, want the child's 2", n)
	}
	r := testClient(t, env.Config).Reaper(ns)
	var latest time.Time
	for _, p := range managedPods(t, ns, "") {
		exp, err := time.Parse(time.RFC3339, p.Annotations[podsandbox.AnnotationExpiresAt])
		if err != nil {
			t.Fatalf("pod %s: expires-at %q: %v", p.Name, p.Annotations[podsandbox.AnnotationExpiresAt], err)
		}
		if time.Until(exp) < 5*time.Second {
			t.Fatalf("pod %s expires at %s, too soon to check that Reap spares it", p.Name, exp)
		}
		if exp.After(latest) {
			latest = exp
		}
	}
	res, err := r.Reap(ctx)
	if err != nil || res.Pods != 0 {
		t.Fatalf("reaped %d before expiry: %v", res.Pods, err)
	}
	if wait := time.Until(latest) + time.Second; wait < reaperChildStartup+reaperChildIdle+5*time.Second {
		time.Sleep(wait)
	} else {
		t.Fatalf("expiry %s is further than the child's startup and idle timeouts", latest)
	}
	res, err = r.Reap(ctx)
	if err != nil || res.Pods != 2 {
		t.Fatalf("reaped %+v: %v", res, err)
	}
	for _, n := range names {
		waitFor(t, "pod "+n+" deleted", 30*time.Second, func() bool {
			p, err := env.Client.CoreV1().Pods(ns).Get(ctx, n, metav1.GetOptions{})
			return err != nil || p.DeletionTimestamp != nil
		})
	}
	if p, err := env.Client.CoreV1().Pods(ns).Get(ctx, "not-ours", metav1.GetOptions{}); err != nil || p.DeletionTimestamp != nil {
		t.Errorf("the reaper touched a pod it does not manage: %v", err)
	}
}

// The child of TestReaperAfterSIGKILL gives its sandboxes these timeouts: a pod expires at most
// startup+idle after its creation (a starting pod's expiry counts from the end of its startup
// timeout). The startup timeout is long enough for a loaded machine: the test waits for the
// expiry, so it costs time only when the pods are slow to start.
const (
	reaperChildStartup = time.Minute
	reaperChildIdle    = 20 * time.Second
)

// reaperChild runs in the child process of TestReaperAfterSIGKILL: it starts two sandboxes,
// reports their pods, and waits to be killed.
func reaperChild(ns string) {
	cfg, err := podsandbox.LoadConfig(os.Getenv("KUBECONFIG"), nil)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	ctx := context.Background()
	var names []string
	for i := range 2 {
		sb, err := podsandbox.NewKubernetesPodSandbox(e2e.ImageBusybox, podsandbox.WithRESTConfig(cfg), podsandbox.WithNamespace(ns), podsandbox.WithResources(denseResources),
			podsandbox.WithMode(podsandbox.ModeAPI), podsandbox.WithImagePullPolicy("Never"), podsandbox.WithIdleTimeout(reaperChildIdle),
			podsandbox.WithStartupTimeout(reaperChildStartup),
			podsandbox.WithSandboxID(fmt.Sprintf("orphan-%d", i)))
		if err == nil {
			err = sb.Start(ctx)
		}
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		names = append(names, sb.PodName())
	}
	fmt.Println("READY " + strings.Join(names, " "))
	select {}
}
