//go:build e2e

package podsandbox_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/internal/e2e"
	"github.com/podsandbox/podsandbox/internal/scale"
)

// podWatches reads the API server's own count of namespace-scoped pod WATCH requests in flight.
func podWatches(t *testing.T) int {
	t.Helper()
	env := e2e.Env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	raw, err := env.Client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		t.Fatalf("reading the API server's /metrics: %v", err)
	}
	total, seen := 0.0, false
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "apiserver_longrunning_requests{") || !strings.Contains(l, `resource="pods"`) ||
			!strings.Contains(l, `verb="WATCH"`) || !strings.Contains(l, `scope="namespace"`) || strings.Contains(l, `subresource="`) && !strings.Contains(l, `subresource=""`) {
			continue
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", l, err)
		}
		total += v
		seen = true
	}
	if !seen {
		return 0 // no such series: no namespace-scoped pod watch at all
	}
	return int(total)
}

// TestScale200Sessions: 200 API-mode sessions through one manager made from one Client open
// exactly one pod WATCH on the API server, cost a bounded number of API requests each and at most
// 50 KiB of heap each, and leave no WATCH and no goroutine behind after Shutdown and Close.
// Not parallel: it reads process-wide and API-server-wide figures (the WATCH count is the API
// server's, so no other process may open or close pod watches meanwhile: make test runs the e2e
// packages one at a time).
func TestScale200Sessions(t *testing.T) {
	const n = 200
	env := e2e.Env(t)
	ns := e2e.CreateNamespace(t, "psbx-scale")
	ctx := ctxT(t, 10*time.Minute) // 200 pods on a loaded 2-core node take minutes

	watchesBefore := podWatches(t)
	leaks := goleak.IgnoreCurrent()
	heapBefore := scale.Heap()

	counter := &scale.Counter{}
	c, err := podsandbox.NewClient(env.Config, podsandbox.WithClientTransportWrapper(counter.Wrap))
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = c.Close(context.Background())
		}
	})
	tiny := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1m"), corev1.ResourceMemory: resource.MustParse("8Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
	}
	f, err := c.Factory(e2e.ImageBusybox, podsandbox.WithMode(podsandbox.ModeAPI), podsandbox.WithNamespace(ns),
		podsandbox.WithImagePullPolicy(corev1.PullNever), podsandbox.WithResources(tiny), podsandbox.WithStartupTimeout(8*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	m, err := podsandbox.NewSessionManager(f)
	if err != nil {
		t.Fatal(err)
	}
	shut := false
	t.Cleanup(func() {
		if !shut {
			_, _ = m.Shutdown(context.Background())
		}
	})

	start := time.Now()
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := m.GetOrCreate(ctx, fmt.Sprintf("user-%03d", i)); err != nil {
				errs <- fmt.Errorf("session %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	created := time.Since(start)
	reqs := counter.Snapshot().Total()
	during := podWatches(t) - watchesBefore
	heapDuring := scale.Heap()
	perSession := (float64(heapDuring) - float64(heapBefore)) / n
	t.Logf("%d sessions live after %s; API requests %d (%.2f per GetOrCreate): %v", n, created.Round(time.Millisecond), reqs, float64(reqs)/n, counter.Snapshot().Requests)
	t.Logf("pod WATCHes on the API server: %d more than before; heap %.1f KiB per live session", during, perSession/1024)
	if during != 1 {
		t.Errorf("%d namespace-scoped pod WATCHes for one client and one namespace, want 1", during)
	}
	// Per GetOrCreate: the NetworkPolicy's POST, the pod's POST, the policy's owner PATCH; once
	// per client: the watch's LIST and WATCH.
	if limit := 3*int64(n) + 10; reqs > limit {
		t.Errorf("%d API requests for %d sessions, want at most %d", reqs, n, limit)
	}
	if perSession > 50*1024 {
		t.Errorf("heap per live session %.1f KiB, want ≤ 50 KiB", perSession/1024)
	}

	// A live session is served from memory: no API request.
	before := counter.Snapshot().Total()
	for i := range n {
		if _, err := m.GetOrCreate(ctx, fmt.Sprintf("user-%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if d := counter.Snapshot().Total() - before; d != 0 {
		t.Errorf("%d API requests to look up %d live sessions", d, n)
	}
	// Spot check that the sessions work.
	for _, i := range []int{0, n / 2, n - 1} {
		sb, _ := m.GetOrCreate(ctx, fmt.Sprintf("user-%03d", i))
		if r, err := sb.Execute(ctx, "echo ok"); err != nil || r.Stdout != "ok\n" {
			t.Errorf("session %d: %+v %v", i, r, err)
		}
	}

	released, err := m.Shutdown(ctx)
	shut = true
	if err != nil || released != n {
		t.Errorf("Shutdown released %d: %v", released, err)
	}
	if err := c.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	closed = true
	waitFor(t, "no pod WATCH of ours on the API server", 20*time.Second, func() bool { return podWatches(t) == watchesBefore })
	// client-go shares one transport (and its HTTP/2 connections to the API server) between
	// clients of the same TLS configuration: the harness's client reads /metrics over the same
	// connection, so that connection's read loop is not the library's.
	if err := goleak.Find(leaks, goleak.IgnoreAnyFunction("golang.org/x/net/http2.(*ClientConn).readLoop")); err != nil {
		t.Errorf("goroutines left after Shutdown and Close: %v", err)
	}
	if left := len(managedPods(t, ns, "")); left != 0 {
		t.Errorf("%d pods left after Shutdown", left)
	}
	// The tests after this one need the node: wait until the 200 pods are really gone, not only
	// terminating.
	waitFor(t, "the 200 pods deleted", 8*time.Minute, func() bool {
		l, err := env.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		return err == nil && len(l.Items) == 0
	})
}
