package scale

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/podsandbox/podsandbox"
)

// poolName is the warm pool's name (label podsandbox.io/pool) in the pool scenario.
const poolName = "scale"

// newClient returns a library Client whose API requests counter counts.
func (r *runner) newClient(counter *Counter) (*podsandbox.Client, error) {
	c, err := podsandbox.NewClient(r.cfg.REST,
		podsandbox.WithClientTransportWrapper(counter.Wrap),
		podsandbox.WithClientLogger(r.lib))
	if err != nil {
		return nil, fmt.Errorf("scale: new client: %w", err)
	}
	if rc := c.RESTConfig(); rc != nil {
		r.res.QPS, r.res.Burst = rc.QPS, rc.Burst
	}
	return c, nil
}

// factory returns a factory of API-mode sandboxes placed on the fake nodes (tolerating their
// taint, selecting their label): no command ever runs in them.
// With Config.Real they are real pods on the real nodes instead.
func (r *runner) factory(c *podsandbox.Client, ns, scenario string, extra ...podsandbox.Option) (podsandbox.Factory, error) {
	opts := []podsandbox.Option{
		podsandbox.WithNamespace(ns),
		podsandbox.WithMode(podsandbox.ModeAPI),
		podsandbox.WithResources(podResources(r.cfg.Real)),
		podsandbox.WithLabels(map[string]string{LabelScenario: scenario}),
	}
	if r.cfg.Real {
		// a few hundred real pods start at once on a small node: give them minutes
		opts = append(opts, podsandbox.WithImagePullPolicy(corev1.PullNever), podsandbox.WithStartupTimeout(8*time.Minute))
	} else {
		opts = append(opts, podsandbox.WithTolerations(corev1.Toleration{Key: FakeNodeKey, Operator: corev1.TolerationOpEqual,
			Value: FakeNodeValue, Effect: corev1.TaintEffectNoSchedule}),
			podsandbox.WithNodeSelector(map[string]string{FakeNodeKey: FakeNodeValue}))
	}
	opts = append(opts, extra...)
	f, err := c.Factory(r.cfg.Image, opts...)
	if err != nil {
		return nil, fmt.Errorf("scale: factory: %w", err)
	}
	return f, nil
}

// scrape reads the API server's metrics; a failure is a problem, not an error, and gives nil.
func (r *runner) scrape(ctx context.Context) Metrics {
	m, err := Scrape(ctx, r.cs)
	if err != nil {
		r.problem("%v", err)
	}
	return m
}

// firstErrors keeps the first few errors of many concurrent calls, for the report.
type firstErrors struct {
	mu   sync.Mutex
	n    int
	errs []string
}

func (f *firstErrors) add(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if len(f.errs) < 3 {
		f.errs = append(f.errs, fmt.Sprintf(format, args...))
	}
}

// progress logs every tenth of n.
func (r *runner) progress(what string, done *atomic.Int64, n int, t0 time.Time) {
	if d := done.Add(1); n >= 10 && d%int64(n/10) == 0 {
		r.cfg.logf("%s: %d/%d after %s", what, d, n, time.Since(t0).Round(100*time.Millisecond))
	}
}

// sessions is the sessions scenario: N GetOrCreate calls, Concurrency at a time, on one Client
// and one SessionManager. The manager is not started (no pool, no idle sweep) and its sandboxes
// keep their pods when stopped, so the reap scenario finds every pod still there.
func (r *runner) sessions(ctx context.Context) error {
	n := r.cfg.Sessions
	ns, err := r.createNamespace(ctx, "sessions")
	if err != nil {
		return err
	}
	r.nsSessions = ns
	m0 := r.scrape(ctx) // before the Client exists: its pod watch is not open yet
	var counter Counter
	c, err := r.newClient(&counter)
	if err != nil {
		return err
	}
	r.clientA = c
	var keep []podsandbox.Option
	if !r.cfg.Real {
		keep = append(keep, podsandbox.WithDeleteOnStop(false)) // for the reap scenario
	}
	f, err := r.factory(c, ns, "sessions", keep...)
	if err != nil {
		return err
	}
	m, err := podsandbox.NewSessionManager(f, podsandbox.WithMaxSessions(0))
	if err != nil {
		return fmt.Errorf("scale: session manager: %w", err)
	}
	res := &SessionsResult{N: n, Concurrency: r.cfg.Concurrency}
	r.res.Sessions = res
	res.HeapBefore = Heap()
	r.cfg.logf("sessions: %d GetOrCreate, %d at a time, in %s", n, r.cfg.Concurrency, ns)

	lat := make([]time.Duration, n)
	var errs firstErrors
	var done atomic.Int64
	t0 := time.Now()
	parallel(ctx, n, r.cfg.Concurrency, func(i int) {
		t := time.Now()
		if _, err := m.GetOrCreate(ctx, sessionID(i)); err != nil {
			errs.add("session %d: %v", i, err)
			return
		}
		lat[i] = time.Since(t)
		r.progress("sessions", &done, n, t0)
	})
	res.Wall = time.Since(t0).Seconds()
	m1 := r.scrape(ctx)
	res.Requests = counter.Snapshot()
	res.HeapAfter = Heap() // the manager's sessions and the Client's pod cache, both still alive
	res.Latency = distOf(lat)
	res.Failed = n - int(done.Load()) // failed, or not started because ctx ended
	if m0 != nil && m1 != nil {
		res.Server = podLatencies(m0, m1)
		res.ServerPodWatches = podWatches(m1) - podWatches(m0)
		res.Rejected = rejected(m1) - rejected(m0)
	}
	if res.Failed > 0 {
		r.problem("sessions: %d of %d GetOrCreate failed: %v", res.Failed, n, errs.errs)
	}
	r.cfg.logf("sessions: %d ready in %.1fs (p50 %.3fs, p99 %.3fs), %d requests",
		res.Latency.N, res.Wall, res.Latency.P50, res.Latency.P99, res.Requests.Total())

	if r.cfg.Real {
		r.usable(ctx, m, n)
	}

	// Stopping detaches every sandbox (kwok: their pods stay, WithDeleteOnStop(false); the Client
	// is closed later, as if the process had been killed). Real pods are deleted, and waited for:
	// whatever runs next needs the node.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 8*time.Minute)
	defer cancel()
	if _, err := m.Shutdown(sctx); err != nil {
		r.problem("sessions: Shutdown: %v", err)
	}
	if r.cfg.Real {
		t1 := time.Now()
		err := wait.PollUntilContextCancel(sctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			l, err := r.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			return err == nil && len(l.Items) == 0, nil
		})
		if err != nil {
			r.problem("sessions: pods still there %s after Shutdown", time.Since(t1).Round(time.Second))
		}
		r.cfg.logf("sessions: every pod gone %.1fs after Shutdown", time.Since(t1).Seconds())
	}
	return nil
}

// usable runs a command in three of the n sessions (first, middle, last) of a real run: the
// sessions the figures count are sandboxes that work. Its pods/exec requests come after the
// figures were taken.
func (r *runner) usable(ctx context.Context, m *podsandbox.SessionManager, n int) {
	for _, i := range []int{0, n / 2, n - 1} {
		sb, err := m.GetOrCreate(ctx, sessionID(i))
		if err != nil {
			r.problem("sessions: session %d: %v", i, err)
			continue
		}
		if res, err := sb.Execute(ctx, "echo ok"); err != nil || res.Output != "ok\n" || res.ExitCode != 0 {
			r.problem("sessions: session %d does not run a command: %+v %v", i, res, err)
		}
	}
}

func sessionID(i int) string { return fmt.Sprintf("scale-%05d", i) }

// informer is the informer scenario: a fresh Client's first GetOrCreate in the namespace of the
// sessions' pods. Its pod watch lists every pod before the new one can be seen Ready.
func (r *runner) informer(ctx context.Context) error {
	ns := r.nsSessions
	pods, err := r.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return fmt.Errorf("scale: informer: listing pods: %w", err)
	}
	res := &InformerResult{Pods: len(pods.Items)}
	pods = nil
	r.res.Informer = res
	var counter Counter
	h0 := Heap()
	c, err := r.newClient(&counter)
	if err != nil {
		return err
	}
	defer r.closeClient(ctx, c, "informer")
	f, err := r.factory(c, ns, "informer")
	if err != nil {
		return err
	}
	m, err := podsandbox.NewSessionManager(f, podsandbox.WithMaxSessions(0))
	if err != nil {
		return fmt.Errorf("scale: session manager: %w", err)
	}
	t0 := time.Now()
	_, err = m.GetOrCreate(ctx, "informer-probe")
	res.First = time.Since(t0).Seconds()
	res.HeapDelta = int64(Heap()) - int64(h0)
	res.Requests = counter.Snapshot()
	runtime.KeepAlive(m)
	if err != nil {
		r.problem("informer: GetOrCreate: %v", err)
	}
	r.cfg.logf("informer: first GetOrCreate among %d pods in %.2fs, heap %+.1f MiB", res.Pods, res.First, float64(res.HeapDelta)/(1<<20))
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if _, err := m.Shutdown(sctx); err != nil {
		r.problem("informer: Shutdown: %v", err)
	}
	return nil
}

// claim is one session of the pool scenario and the pod that serves it.
type claim struct {
	session, pod string
	replica      string // the claiming manager's index
}

// labelReplica marks the pool scenario's warm pods with the manager that started them, so a
// claim of another replica's pod can be told apart (labels are not part of a pool's spec hash).
const labelReplica = "scale.podsandbox.io/replica"

// pool is the pool scenario: Managers session managers (replicas), each with its own Client and
// a share of PoolSize warm pods of one pool name, started at once. When every warm pod is Ready,
// all managers claim PoolSize sessions at once, the first manager half of them: it runs out of
// its own warm pods and claims the other replicas' while they claim them too.
func (r *runner) pool(ctx context.Context) error {
	ns, err := r.createNamespace(ctx, "pool")
	if err != nil {
		return err
	}
	k := r.cfg.Managers
	sizes := split(r.cfg.PoolSize, k)
	demand := sizes
	if k > 1 {
		first := (r.cfg.PoolSize + 1) / 2
		demand = append([]int{first}, split(r.cfg.PoolSize-first, k-1)...)
	}
	res := &PoolResult{Size: r.cfg.PoolSize, Managers: k, Sizes: sizes, Demand: demand}
	r.res.Pool = res
	counters := make([]Counter, k)
	clients := make([]*podsandbox.Client, 0, k)
	managers := make([]*podsandbox.SessionManager, 0, k)
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		t0 := time.Now()
		var wg sync.WaitGroup
		for _, m := range managers {
			wg.Go(func() {
				if _, err := m.Shutdown(cctx); err != nil {
					r.problem("pool: Shutdown: %v", err)
				}
			})
		}
		wg.Wait()
		res.Shutdown = time.Since(t0).Seconds()
		for _, c := range clients {
			if err := c.Close(cctx); err != nil {
				r.problem("pool: Close: %v", err)
			}
		}
	}()
	for i := range k {
		c, err := r.newClient(&counters[i])
		if err != nil {
			return err
		}
		clients = append(clients, c)
		f, err := r.factory(c, ns, "pool", podsandbox.WithLabels(map[string]string{labelReplica: strconv.Itoa(i)}))
		if err != nil {
			return err
		}
		m, err := podsandbox.NewSessionManager(f,
			podsandbox.WithWarmPool(sizes[i], podsandbox.WithPoolName(poolName)),
			podsandbox.WithMaxSessions(0))
		if err != nil {
			return fmt.Errorf("scale: session manager: %w", err)
		}
		managers = append(managers, m)
	}
	total := func() Counts {
		var sum Counts
		for i := range counters {
			sum = sum.Add(counters[i].Snapshot())
		}
		return sum
	}
	ready := func() int {
		n := 0
		for _, m := range managers {
			n += m.Pool().Ready()
		}
		return n
	}

	r.cfg.logf("pool: %d warm pods over %d managers %v, in %s", r.cfg.PoolSize, k, sizes, ns)
	t0 := time.Now()
	for _, m := range managers {
		if err := m.Start(ctx); err != nil {
			return fmt.Errorf("scale: pool: Start: %w", err)
		}
	}
	timeout := max(2*time.Minute, time.Duration(r.cfg.PoolSize)*200*time.Millisecond)
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		return ready() >= r.cfg.PoolSize, nil
	})
	if err != nil {
		r.problem("pool: only %d of %d warm pods ready after %s", ready(), r.cfg.PoolSize, time.Since(t0).Round(time.Second))
		return nil
	}
	res.Fill = time.Since(t0).Seconds()
	res.FillRequests = total()
	r.cfg.logf("pool: %d warm pods ready in %.1fs", r.cfg.PoolSize, res.Fill)

	s0 := r.scrape(ctx)
	claims := make([][]claim, k)
	lat := make([][]time.Duration, k)
	var errs firstErrors
	t1 := time.Now()
	var wg sync.WaitGroup
	for i, m := range managers {
		claims[i] = make([]claim, demand[i])
		lat[i] = make([]time.Duration, demand[i])
		conc := min(max(r.cfg.Concurrency/k, 1), max(demand[i], 1))
		wg.Go(func() {
			parallel(ctx, demand[i], conc, func(j int) {
				id := fmt.Sprintf("claim-%d-%05d", i, j)
				t := time.Now()
				sb, err := m.GetOrCreate(ctx, id)
				if err != nil {
					errs.add("%s: %v", id, err)
					return
				}
				lat[i][j] = time.Since(t)
				pn, _ := sb.(interface{ PodName() string })
				if pn == nil {
					errs.add("%s: the sandbox (%T) does not name its pod", id, sb)
					return
				}
				claims[i][j] = claim{session: id, pod: pn.PodName(), replica: strconv.Itoa(i)}
			})
		})
	}
	wg.Wait()
	res.ClaimWall = time.Since(t1).Seconds()
	s1 := r.scrape(ctx)
	res.ClaimRequests = total().Sub(res.FillRequests)
	var all []claim
	var allLat []time.Duration
	for i := range k {
		for j, c := range claims[i] {
			if c.pod != "" {
				all = append(all, c)
				allLat = append(allLat, lat[i][j])
			}
		}
	}
	res.Claims, res.Failed = len(all), errs.n
	res.ClaimLatency = distOf(allLat)
	if s0 != nil && s1 != nil {
		res.Server = podLatencies(s0, s1)
		res.Rejected = rejected(s1) - rejected(s0)
	}
	if errs.n > 0 {
		r.problem("pool: %d claims failed: %v", errs.n, errs.errs)
	}
	if err := r.verifyClaims(ctx, ns, all, res); err != nil {
		return err
	}
	r.cfg.logf("pool: %d claims (%d warm, %d of them another replica's, %d cold, %d duplicates) in %.2fs, p50 %.3fs",
		res.Claims, res.Warm, res.Shared, res.Cold, res.Duplicates, res.ClaimWall, res.ClaimLatency.P50)
	return nil
}

// expire moves the expires-at annotation of the named pods a minute into the past, as if their
// idle timeout had passed with nobody using them. It is the reap scenario's setup, through the
// admin client: the library's requests are not counted in it.
func (r *runner) expire(ctx context.Context, ns string, names []string) error {
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{podsandbox.AnnotationExpiresAt: past}}})
	var errs firstErrors
	t0 := time.Now()
	parallel(ctx, len(names), 32, func(i int) {
		if _, err := r.cs.CoreV1().Pods(ns).Patch(ctx, names[i], types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			errs.add("%s: %v", names[i], err)
		}
	})
	if errs.n > 0 || ctx.Err() != nil {
		return fmt.Errorf("scale: reap: marking %d pods expired: %d failed, e.g. %v (%v)", len(names), errs.n, errs.errs, ctx.Err())
	}
	r.cfg.logf("reap: %d pods marked expired (setup, %s)", len(names), time.Since(t0).Round(100*time.Millisecond))
	return nil
}

// verifyClaims checks that every claimed pod serves exactly one session, the one its sandbox-id
// annotation names, by pod UID, and counts warm (pool) and cold claims.
func (r *runner) verifyClaims(ctx context.Context, ns string, all []claim, res *PoolResult) error {
	pods, err := r.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("scale: pool: listing pods: %w", err)
	}
	byName := map[string]*corev1.Pod{}
	for i := range pods.Items {
		byName[pods.Items[i].Name] = &pods.Items[i]
	}
	byUID := map[string][]string{}
	for _, c := range all {
		p := byName[c.pod]
		if p == nil {
			r.problem("pool: the pod %s of session %s does not exist", c.pod, c.session)
			continue
		}
		byUID[string(p.UID)] = append(byUID[string(p.UID)], c.session)
		if got := p.Annotations[podsandbox.AnnotationSandboxID]; got != c.session {
			res.Duplicates++
			r.problem("pool: pod %s serves session %s but its annotation names %q", c.pod, c.session, got)
		}
		if p.Labels[podsandbox.LabelPool] == poolName {
			res.Warm++
			if p.Labels[labelReplica] != c.replica {
				res.Shared++
			}
		} else {
			res.Cold++
		}
	}
	for uid, ss := range byUID {
		if len(ss) > 1 {
			res.Duplicates += len(ss) - 1
			r.problem("pool: pod UID %s serves %d sessions: %v", uid, len(ss), ss)
		}
	}
	return nil
}

// reap is the reap scenario: the sessions' Client is gone; their pods are made expired, and a
// fresh Client's Reaper sweeps the namespace.
func (r *runner) reap(ctx context.Context) error {
	ns := r.nsSessions
	pods, err := r.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("scale: reap: listing pods: %w", err)
	}
	var names []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil { // else on its way out already (the informer scenario's pod)
			names = append(names, p.Name)
		}
	}
	pods = nil
	res := &ReapResult{Expired: len(names)}
	r.res.Reap = res
	if err := r.expire(ctx, ns, names); err != nil {
		return err
	}
	var counter Counter
	c, err := r.newClient(&counter)
	if err != nil {
		return err
	}
	defer r.closeClient(ctx, c, "reap")
	s0 := r.scrape(ctx)
	t0 := time.Now()
	rr, err := c.Reaper(ns).Reap(ctx)
	res.Took = time.Since(t0).Seconds()
	s1 := r.scrape(ctx)
	res.Deleted, res.Secrets = rr.Pods, rr.Secrets
	res.Requests = counter.Snapshot()
	if s0 != nil && s1 != nil {
		res.Server = podLatencies(s0, s1)
		res.Rejected = rejected(s1) - rejected(s0)
	}
	if err != nil {
		res.Err = err.Error()
		r.problem("reap: %v", err)
	}
	if res.Deleted != res.Expired {
		r.problem("reap: %d of %d expired pods deleted", res.Deleted, res.Expired)
	}
	r.cfg.logf("reap: %d pods deleted in %.1fs; waiting until they are gone", res.Deleted, res.Took)
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := r.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{Limit: 1})
		return err == nil && len(l.Items) == 0, nil
	})
	res.Gone = time.Since(t0).Seconds()
	if err != nil {
		r.problem("reap: pods still there %s after Reap started", time.Since(t0).Round(time.Second))
	}
	return nil
}

// closeClient closes c within a minute, also when ctx is already done, and records a failure as
// a problem of the scenario what.
func (r *runner) closeClient(ctx context.Context, c *podsandbox.Client, what string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := c.Close(cctx); err != nil {
		r.problem("%s: Close: %v", what, err)
	}
}
