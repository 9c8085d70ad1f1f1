package podsandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/podsandbox/podsandbox/internal/wire"
)

// Client is the one owner of a connection to a cluster: the REST configuration, the clientset,
// one pod watch (informer) per namespace shared by every sandbox, factory, warm pool and reaper
// made from it, and the HTTP clients that reach in-pod servers. Make one per process and cluster,
// make everything else from it, and Close it last:
//
//	c, err := podsandbox.NewClient(nil) // kubeconfig by client-go's rules
//	if err != nil { ... }
//	defer c.Close(ctx)
//	sb, err := c.NewSandbox(image, podsandbox.WithNamespace("sandboxes"))
//
// A thousand sessions made from one Client open one WATCH per namespace, not a thousand.
// A Client is safe for concurrent use.
type Client struct {
	rest *rest.Config // nil only when WithClientset was given without a config
	cs   kubernetes.Interface
	log  *slog.Logger
	tel  *telemetry // tracer and instruments of everything made from the Client

	// podHTTP carries pod-IP and port-forward requests: keep-alive connections to many pods.
	podHTTP *http.Transport
	// apiHTTP is the authenticated client of API requests and pods/proxy (nil without a config).
	// HTTP/2, as client-go negotiates: HTTP/1.1 streamed bulk output through pods/proxy faster,
	// but about 3% of its responses on reused connections ended early (unexpected EOF) in tests
	// against kube-apiserver v1.36; HTTP/2 had none.
	apiHTTP *http.Client

	mu       sync.Mutex
	closed   bool
	watchers map[string]*podWatcher // by namespace; a watcher runs while it has subscribers
}

// ClientOption configures a Client.
type ClientOption func(*clientConfig) error

type clientConfig struct {
	cs    kubernetes.Interface
	log   *slog.Logger
	qps   float32
	burst int
	wrap  func(http.RoundTripper) http.RoundTripper
	tp    trace.TracerProvider
	mp    metric.MeterProvider
}

// WithClientset makes the Client send its API requests through cs (a fake clientset in tests, or
// one the application already has). Transports that need a REST configuration (pods/exec, and
// pods/proxy or port-forward in HTTP mode) still use the configuration given to NewClient; with a
// nil one only ModeHTTP by pod IP works.
func WithClientset(cs kubernetes.Interface) ClientOption {
	return func(c *clientConfig) error {
		if cs == nil {
			return fmt.Errorf("%w: WithClientset(nil)", ErrInvalidArgument)
		}
		c.cs = cs
		return nil
	}
}

// WithClientLogger sets the logger of the Client and of everything made from it that has none of
// its own (default slog.Default()).
func WithClientLogger(l *slog.Logger) ClientOption {
	return func(c *clientConfig) error { c.log = l; return nil }
}

// WithQPS sets the client-side rate limit of API requests (default: the configuration's own, or
// 50 QPS with bursts of 100 when it sets none; client-go's 5 QPS makes bursts of sessions slow).
func WithQPS(qps float32, burst int) ClientOption {
	return func(c *clientConfig) error {
		if qps <= 0 || burst < 1 {
			return fmt.Errorf("%w: QPS %v and burst %d must be positive", ErrInvalidArgument, qps, burst)
		}
		c.qps, c.burst = qps, burst
		return nil
	}
}

// WithClientTransportWrapper wraps the HTTP transport of every API request the Client sends: for
// counting requests, tracing, or adding headers. fn is called once for each transport the Client
// builds (API requests, every pods/exec stream), so it must return a new wrapper each time rather
// than change a shared one.
func WithClientTransportWrapper(fn func(http.RoundTripper) http.RoundTripper) ClientOption {
	return func(c *clientConfig) error { c.wrap = fn; return nil }
}

// NewClient returns a Client for the cluster that cfg describes. A nil cfg is loaded by client-go's
// standard rules (in-cluster when the process runs in a pod, else $KUBECONFIG or ~/.kube/config);
// see LoadConfig for an explicit path. cfg is copied. NewClient does no network I/O.
func NewClient(cfg *rest.Config, opts ...ClientOption) (*Client, error) {
	var cc clientConfig
	for _, o := range opts {
		if err := o(&cc); err != nil {
			return nil, err
		}
	}
	if cfg == nil && cc.cs == nil {
		var err error
		if cfg, err = LoadConfig("", nil); err != nil {
			return nil, err
		}
	}
	tel, err := newTelemetry(cc.tp, cc.mp)
	if err != nil {
		return nil, err
	}
	c := &Client{cs: cc.cs, log: cc.log, tel: tel, watchers: map[string]*podWatcher{}}
	if c.log == nil {
		c.log = slog.Default()
	}
	if cfg != nil {
		cfg = rest.CopyConfig(cfg)
		switch {
		case cc.qps > 0:
			cfg.QPS, cfg.Burst = cc.qps, cc.burst
		case cfg.QPS == 0 && cfg.RateLimiter == nil:
			cfg.QPS, cfg.Burst = 50, 100
		}
		if cc.wrap != nil {
			cfg.Wrap(cc.wrap)
		}
		c.rest = cfg
	}
	if c.rest != nil {
		// one authenticated HTTP client for API requests and pods/proxy, so Close can drop its
		// idle connections
		hc, err := rest.HTTPClientFor(c.rest)
		if err != nil {
			return nil, fmt.Errorf("podsandbox: kubernetes client: %w", err)
		}
		c.apiHTTP = hc
	}
	if c.cs == nil {
		cs, err := kubernetes.NewForConfigAndClient(c.rest, c.apiHTTP)
		if err != nil {
			return nil, fmt.Errorf("podsandbox: kubernetes client: %w", err)
		}
		c.cs = cs
	}
	c.podHTTP = &http.Transport{
		Proxy:               nil, // pod IPs are never reached through an HTTP proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return c, nil
}

// Clientset returns the clientset the Client sends its API requests through.
func (c *Client) Clientset() kubernetes.Interface { return c.cs }

// RESTConfig returns a copy of the Client's REST configuration, or nil when it has none.
func (c *Client) RESTConfig() *rest.Config {
	if c.rest == nil {
		return nil
	}
	return rest.CopyConfig(c.rest)
}

// ErrClientClosed is returned by a Client (and what it made) after Close.
var ErrClientClosed = errors.New("podsandbox: client is closed")

// NewSandbox validates the options and prepares a sandbox for image on this Client's cluster. It
// does no network I/O and creates nothing: Start does. The connection options (WithKubeconfig,
// WithInCluster, WithRESTConfig) belong to NewClient and are refused here.
func (c *Client) NewSandbox(image string, opts ...Option) (*KubernetesPodSandbox, error) {
	spec, err := newSpec(image, opts, specForClient)
	if err != nil {
		return nil, err
	}
	return c.newSandbox(spec)
}

// Attach returns a started sandbox for the existing pod of sandbox id in namespace, made earlier
// by this or another process (a CLI's `run`, a replica that died, a session to inspect). It reads
// the pod's mode, image and port from the pod itself and, in HTTP mode, its token from its Secret;
// it creates nothing. By default its Stop only detaches: pass WithDeleteOnStop(true) to delete the
// pod. opts may also set how to reach the pod (WithReach) and logging. It fails with ErrNoSandbox
// when there is no such pod, and with a *ConflictError for a pod podsandbox did not make for id.
func (c *Client) Attach(ctx context.Context, namespace, id string, opts ...Option) (*KubernetesPodSandbox, error) {
	pod, err := c.findPod(ctx, namespace, id)
	if err != nil {
		return nil, err
	}
	mode := Mode(pod.Annotations[AnnotationMode])
	base := []Option{WithNamespace(namespace), WithSandboxID(id), WithMode(mode), WithDeleteOnStop(false)}
	ctr := pod.Spec.Containers[0]
	if mode == ModeHTTP {
		for _, e := range ctr.Env {
			if port, err := strconv.Atoi(e.Value); e.Name == wire.EnvPort && err == nil {
				base = append(base, WithPort(port))
			}
		}
	}
	sb, err := c.NewSandbox(ctr.Image, append(base, opts...)...)
	if err != nil {
		return nil, err
	}
	sb.podName = pod.Name // differs from PodName(id) for a claimed warm pod
	if err := sb.start(ctx, pod); err != nil {
		sb.release()
		return nil, err
	}
	return sb, nil
}

// Remove deletes the pod of sandbox id in namespace (with a UID precondition; its token Secret
// goes with it), whatever state it is in: what `podsandbox rm` does. It fails with ErrNoSandbox
// when there is no such pod, and with a *ConflictError for a pod podsandbox did not make for id.
func (c *Client) Remove(ctx context.Context, namespace, id string) error {
	pod, err := c.findPod(ctx, namespace, id)
	if err != nil {
		return err
	}
	uid := pod.UID
	err = c.cs.CoreV1().Pods(namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("podsandbox: remove %s: %w", id, err)
	}
	return nil
}

// findPod returns the pod of sandbox id: the one named after it, or a warm pod claimed for it.
func (c *Client) findPod(ctx context.Context, namespace, id string) (*corev1.Pod, error) {
	name := PodName(id)
	pod, err := c.cs.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		pod, err = c.claimedPod(ctx, namespace, id) // a warm pod claimed for id keeps its pool name
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("%w: %q in namespace %s (pod %s)", ErrNoSandbox, id, namespace, name)
	case err != nil:
		return nil, fmt.Errorf("podsandbox: sandbox %s: %w", id, err)
	case pod.Labels[LabelManagedBy] != ManagedByValue || len(pod.Spec.Containers) == 0:
		return nil, &ConflictError{Pod: pod.Name, Reason: "it is not managed by podsandbox"}
	case pod.Annotations[AnnotationSandboxID] != id:
		return nil, &ConflictError{Pod: pod.Name, Reason: fmt.Sprintf("it belongs to sandbox id %q", pod.Annotations[AnnotationSandboxID])}
	}
	return pod, nil
}

// claimedPod finds the live pod a warm pool claim bound to session id: it has the id's
// sandbox-id label and annotation but a pool pod's name. NotFound when there is none.
func (c *Client) claimedPod(ctx context.Context, namespace, id string) (*corev1.Pod, error) {
	label := strings.TrimPrefix(PodName(id), PodNamePrefix)
	l, err := c.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{
		LabelSelector: LabelManagedBy + "=" + ManagedByValue + "," + LabelSandboxID + "=" + label})
	if err != nil {
		return nil, err
	}
	for i := range l.Items {
		if p := &l.Items[i]; p.Annotations[AnnotationSandboxID] == id && p.DeletionTimestamp == nil {
			return p, nil
		}
	}
	return nil, apierrors.NewNotFound(corev1.Resource("pods"), PodName(id))
}

// Reaper returns a Reaper for namespace that uses this Client's clientset and logger.
func (c *Client) Reaper(namespace string) *Reaper {
	r := NewReaper(c.cs, namespace, c.log)
	r.tel = c.tel
	return r
}

// Close stops every pod watch and waits for its goroutines, and closes idle connections. Sandboxes
// made from the Client stop working for new operations; Stop them (or Shutdown their
// SessionManager) first when their pods should be deleted. Close is idempotent.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	ws := c.watchers
	c.watchers = map[string]*podWatcher{}
	c.mu.Unlock()
	for _, w := range ws {
		w.cancel()
	}
	var err error
	for _, w := range ws {
		select {
		case <-w.done:
		case <-ctx.Done():
			err = fmt.Errorf("podsandbox: closing the client: pod watch of %s still running: %w", w.ns, ctx.Err())
		}
	}
	c.closeIdle()
	return err
}

// closeIdle closes the idle keep-alive connections of the Client's HTTP clients.
func (c *Client) closeIdle() {
	c.podHTTP.CloseIdleConnections()
	if c.apiHTTP != nil {
		utilnet.CloseIdleConnectionsFor(c.apiHTTP.Transport)
	}
}

// proxyClient returns the authenticated HTTP client for pods/proxy.
func (c *Client) proxyClient() (*http.Client, error) {
	if c.apiHTTP == nil {
		return nil, fmt.Errorf("%w: pods/proxy needs a REST configuration: give NewClient one", ErrInvalidArgument)
	}
	return c.apiHTTP, nil
}

// subscribe follows one pod through the namespace's shared watch, starting the watch for its first
// subscriber.
func (c *Client) subscribe(ns, name string) (*podSubscription, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClientClosed
	}
	w := c.watchers[ns]
	if w == nil {
		w = newPodWatcher(c, ns)
		c.watchers[ns] = w
	}
	w.refs++
	c.mu.Unlock()
	return w.subscribe(name), nil
}

// unsubscribe drops one reference to the namespace's watch and stops it, waiting for its
// goroutines, when it was the last.
func (c *Client) unsubscribe(w *podWatcher) {
	c.mu.Lock()
	w.refs--
	last := w.refs == 0 && c.watchers[w.ns] == w
	if last {
		delete(c.watchers, w.ns)
	}
	c.mu.Unlock()
	if last {
		w.cancel()
		<-w.done // the informer returns promptly once cancelled
	}
}

// watches returns the number of running pod watches (for tests).
func (c *Client) watches() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.watchers)
}
