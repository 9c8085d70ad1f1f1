// Package scale measures podsandbox's control-plane paths at scale on simulated nodes: kwok
// (make kwok-up) fakes nodes whose pods turn Running and Ready as soon as they are scheduled, so
// thousands of sessions cost no containers. kwok cannot run commands, so the scenarios measure
// what needs none, through the library's public API only:
//
//   - sessions: N sessions through SessionManager.GetOrCreate (API mode: create, then the shared
//     watch until Running and Ready) with bounded concurrency; API requests per session, the
//     client's heap, the API server's own latency;
//   - informer: a fresh Client's first GetOrCreate in that namespace of N pods (its pod watch
//     lists them all first): the time and the heap that one watch's cache costs;
//   - pool: a warm pool of P pods shared out over M session managers, each with its own Client
//     (M replicas of a service), filled at once and then claimed at once; no pod may serve two
//     sessions (checked by pod UID and the sandbox-id annotation);
//   - reap: the sessions' Client is closed as if its process had been killed, their pods' expiry
//     annotations are moved into the past (as if their idle timeout had passed; setup, not
//     measured), and a fresh Client's Reaper sweeps the N pods.
//
// The figures come from a request-counting transport (podsandbox.WithClientTransportWrapper),
// the Go heap, and the API server's /metrics (latency histograms, open WATCHes, 429s). Run
// creates its own namespaces and deletes them at the end, also on error or cancellation.
// The command is ./internal/scale/cmd/scale (make scale); make bench prints its figures as the
// "scale (simulated)" block; the e2e test runs every scenario at a small size.
package scale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// The fake nodes of hack/cluster/kwok.sh: selected by this label, tainted with this key.
const (
	FakeNodeKey   = "kwok.x-k8s.io/node"
	FakeNodeValue = "fake"
)

// LabelScenario (on every pod and namespace Run makes) names the scenario.
const LabelScenario = "podsandbox.dev/scale"

// Config sizes a run.
type Config struct {
	// REST reaches the cluster as an identity that may create namespaces, list nodes and read the
	// API server's /metrics (the local cluster's admin kubeconfig may). Its QPS and Burst, when
	// set, are the library clients' rate limit; else the library's default applies.
	REST *rest.Config
	// Image of the sandboxes; kwok never pulls it.
	Image string
	// Sessions is the number of sessions of the sessions scenario, and so of pods the informer
	// and reap scenarios see. Concurrency bounds the GetOrCreate calls in flight.
	Sessions, Concurrency int
	// PoolSize warm pods are shared out over Managers session managers.
	PoolSize, Managers int
	// Scenarios to run, of "sessions", "informer", "pool", "reap" (all when empty). "informer"
	// and "reap" need "sessions".
	Scenarios []string
	// Real runs the sessions scenario alone on the cluster's real nodes instead of kwok's: real
	// pods (Image must be present on the node; it is never pulled), so a few hundred at most.
	// Three sessions run a command to show they are usable, and Shutdown deletes the pods.
	Real bool
	// NamespaceLabels are added to the namespaces Run creates (the e2e harness's labels let it
	// sweep what a killed run left).
	NamespaceLabels map[string]string
	// Logf reports progress (nil: silent).
	Logf func(format string, args ...any)
	// LibraryLog is the library's logger (nil: warnings and errors to stderr).
	LibraryLog *slog.Logger
}

func (c *Config) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

func (c *Config) wants(s string) bool {
	return len(c.Scenarios) == 0 || slices.Contains(c.Scenarios, s)
}

// Run runs the scenarios and returns their figures. The error is for a run that could not be
// set up or measured at all; failures inside a scenario are in Result.Problems. Everything Run
// created is deleted before it returns, also when ctx is cancelled.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.REST == nil {
		return nil, errors.New("scale: no REST config")
	}
	if cfg.Image == "" {
		cfg.Image = "podsandbox.local/busybox:1"
	}
	cfg.Concurrency = max(cfg.Concurrency, 1)
	cfg.Managers = max(cfg.Managers, 1)
	if (cfg.wants("informer") || cfg.wants("reap")) && !cfg.wants("sessions") {
		return nil, errors.New("scale: the informer and reap scenarios need the sessions scenario")
	}
	if cfg.Real {
		if !slices.Equal(cfg.Scenarios, []string{"sessions"}) {
			return nil, errors.New("scale: Real runs the sessions scenario only: set Scenarios to [sessions]")
		}
	}
	admin := rest.CopyConfig(cfg.REST)
	admin.QPS, admin.Burst = 500, 1000 // setup, checks and /metrics: not what is measured
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, cs: cs, res: &Result{Start: time.Now(), Host: cfg.REST.Host, Real: cfg.Real}}
	if r.lib = cfg.LibraryLog; r.lib == nil {
		r.lib = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	defer r.cleanup(context.WithoutCancel(ctx))
	if err := r.check(ctx); err != nil {
		return nil, err
	}
	if cfg.wants("sessions") {
		if err := r.sessions(ctx); err != nil {
			return r.res, err
		}
		if cfg.wants("informer") && ctx.Err() == nil {
			if err := r.informer(ctx); err != nil {
				return r.res, err
			}
		}
	}
	if cfg.wants("pool") && cfg.PoolSize > 0 && ctx.Err() == nil {
		if err := r.pool(ctx); err != nil {
			return r.res, err
		}
	}
	if r.clientA != nil {
		// The sessions' process "dies": its watch ends, its pods stay behind for the reaper.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		if err := r.clientA.Close(cctx); err != nil {
			r.problem("closing the sessions' client: %v", err)
		}
		cancel()
		r.clientA = nil
	}
	if cfg.wants("reap") && ctx.Err() == nil {
		if err := r.reap(ctx); err != nil {
			return r.res, err
		}
	}
	r.res.Wall = time.Since(r.res.Start).Seconds()
	return r.res, ctx.Err()
}

// runner holds one run's state.
type runner struct {
	cfg Config
	cs  kubernetes.Interface // admin client for setup and checks; its requests are not counted
	lib *slog.Logger
	res *Result

	mu         sync.Mutex
	namespaces []string
	clientA    closer // the sessions' Client until the reap scenario "kills" it
	nsSessions string
}

type closer interface{ Close(context.Context) error }

func (r *runner) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	r.res.Problems = append(r.res.Problems, msg)
	r.cfg.logf("PROBLEM: %s", msg)
}

// check fails unless the cluster answers and has Ready fake nodes.
func (r *runner) check(ctx context.Context) error {
	v, err := r.cs.Discovery().ServerVersion()
	if err != nil {
		return fmt.Errorf("scale: the cluster at %s does not answer: %w (start it with `make cluster-up`)", r.cfg.REST.Host, err)
	}
	r.res.Server = v.GitVersion
	if r.cfg.Real {
		return nil
	}
	nodes, err := r.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: FakeNodeKey + "=" + FakeNodeValue})
	if err != nil {
		return fmt.Errorf("scale: listing the fake nodes: %w", err)
	}
	for _, n := range nodes.Items {
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				r.res.FakeNodes++
			}
		}
	}
	if r.res.FakeNodes == 0 {
		return fmt.Errorf("scale: the cluster at %s has no Ready kwok node (label %s=%s, %d such nodes): run `make kwok-up`",
			r.cfg.REST.Host, FakeNodeKey, FakeNodeValue, len(nodes.Items))
	}
	return nil
}

// createNamespace makes psbx-scale-<scenario>-<random> and waits for its default ServiceAccount
// (the API server refuses pods until it exists).
func (r *runner) createNamespace(ctx context.Context, scenario string) (string, error) {
	labels := map[string]string{LabelScenario: scenario}
	for k, v := range r.cfg.NamespaceLabels {
		labels[k] = v
	}
	ns, err := r.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "psbx-scale-" + scenario + "-", Labels: labels,
	}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("scale: creating a namespace: %w", err)
	}
	r.mu.Lock()
	r.namespaces = append(r.namespaces, ns.Name)
	r.mu.Unlock()
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := r.cs.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		return "", fmt.Errorf("scale: namespace %s: no default ServiceAccount: %w", ns.Name, err)
	}
	r.cfg.logf("namespace %s", ns.Name)
	return ns.Name, nil
}

// cleanup closes what is still open and deletes the run's namespaces: the pods first, in one
// request and without grace (they are fake), then the namespace, waiting up to 3 minutes.
func (r *runner) cleanup(ctx context.Context) {
	if r.clientA != nil {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_ = r.clientA.Close(cctx)
		cancel()
		r.clientA = nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	zero := int64(0)
	for _, ns := range r.namespaces {
		err := r.cs.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			r.cfg.logf("deleting the pods of %s: %v", ns, err)
		}
		if err := r.cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			r.cfg.logf("deleting namespace %s: %v (delete it by hand)", ns, err)
		}
	}
	for _, ns := range r.namespaces {
		err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			_, err := r.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			r.cfg.logf("namespace %s is still there after 3 min: delete it by hand (kubectl delete ns %s)", ns, ns)
		} else {
			r.cfg.logf("namespace %s deleted", ns)
		}
	}
	r.namespaces = nil
}

// podResources are the sandboxes' requests and limits: small, so the fake nodes' capacity (pods,
// not CPU) is what bounds them. With Real, smaller still (1m CPU, 8Mi), so a few hundred real
// pods fit on one small node.
func podResources(real bool) corev1.ResourceRequirements {
	if real {
		return corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1m"), corev1.ResourceMemory: resource.MustParse("8Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
		}
	}
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
	}
}
