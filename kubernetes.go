package podsandbox

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/podsandbox/podsandbox/internal/ere"
	"github.com/podsandbox/podsandbox/internal/fileops"
	"github.com/podsandbox/podsandbox/internal/wire"
)

// KubernetesPodSandbox is a Sandbox backed by one Kubernetes pod: the Go port of upstream's
// KubernetesPodSandbox. Create it with NewKubernetesPodSandbox, then Start it. It is safe for
// concurrent use.
type KubernetesPodSandbox struct {
	id      atomic.Pointer[string] // changes once, when a warm pod is claimed
	podName string
	cfg     config
	kc      *Client              // the owner of the connection, the shared watch and HTTP clients
	ownsKC  bool                 // kc is private (NewKubernetesPodSandbox): Stop drops its idle connections
	client  kubernetes.Interface // kc's clientset
	rest    *rest.Config         // kc's REST configuration (nil with a bare WithClientset)
	log     *slog.Logger
	tel     *telemetry // kc's

	lastActivity atomic.Int64              // unix nanoseconds
	via          atomic.Value              // string: the path the last API-mode call took (Via*)
	lastExtend   atomic.Int64              // unix nanoseconds of the last expiry annotation update
	sessionEnv   map[string]string         // bound at claim time (warm pools); added to every command
	expiryTTL    atomic.Int64              // warm pool members: expiry is this far ahead (ns), not the idle timeout
	startedUID   atomic.Pointer[types.UID] // the pod's UID, for background work that must not take mu

	mu      sync.Mutex
	token   string
	secret  string // the token Secret's name (HTTP mode); see secretName
	uid     types.UID
	podIP   string
	tr      transport
	watch   *podSubscription
	started bool
	stopped bool
	healthy bool // HTTP mode: the server answered /health during Start

	// bg runs this incarnation's background work (moving the expiry forward, storing a rotated
	// token); Stop cancels it and waits.
	bg background
}

// transport is what the two modes implement; KubernetesPodSandbox resolves paths, tracks activity
// and maps "pod gone" around it.
type transport interface {
	exec(ctx context.Context, command string, c ExecConfig) (*ExecuteResponse, error)
	readBytes(ctx context.Context, path string) ([]byte, error)
	read(ctx context.Context, path string, offset, limit int) (string, error)
	write(ctx context.Context, path string, content []byte) (int, error)
	edit(ctx context.Context, path, old, new string, replaceAll bool) (int, error)
	ls(ctx context.Context, path string) ([]fileops.Entry, error)
	glob(ctx context.Context, pattern, root string) ([]fileops.Entry, error)
	grep(ctx context.Context, pattern, path, glob string, hidden bool) ([]GrepMatch, error)
	exists(ctx context.Context, path string) (bool, error)
	close()
}

var _ Sandbox = (*KubernetesPodSandbox)(nil)

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// NewKubernetesPodSandbox validates the options and prepares a sandbox for image, for the case of
// one sandbox (and upstream's API shape): it makes a Client of its own from the connection options
// (WithKubeconfig, WithInCluster, WithRESTConfig; else in-cluster, else $KUBECONFIG or
// ~/.kube/config, client-go's standard rules). Code that makes many sandboxes makes one Client and
// calls Client.NewSandbox or Client.Factory, so they share one watch. NewKubernetesPodSandbox
// does no network I/O and creates nothing: Start does.
func NewKubernetesPodSandbox(image string, opts ...Option) (*KubernetesPodSandbox, error) {
	spec, err := newSpec(image, opts, specStandalone)
	if err != nil {
		return nil, err
	}
	cfg := spec.restConfig
	if cfg == nil {
		if cfg, err = LoadConfig(spec.kubeconfigPath, spec.inCluster); err != nil {
			return nil, err
		}
	}
	var copts []ClientOption
	if spec.logger != nil {
		copts = append(copts, WithClientLogger(spec.logger))
	}
	c, err := NewClient(cfg, copts...)
	if err != nil {
		return nil, err
	}
	s, err := c.newSandbox(spec)
	if err != nil {
		return nil, err
	}
	s.ownsKC = true
	return s, nil
}

// newSandbox makes a sandbox of a validated spec on this client.
func (c *Client) newSandbox(spec config) (*KubernetesPodSandbox, error) {
	if err := c.canServe(spec); err != nil {
		return nil, err
	}
	id := spec.sandboxID
	if id == "" {
		id = uuid.New().String()
		id = id[0:8] + id[9:13] + id[14:18] + id[19:23] + id[24:] // hex, as upstream's uuid4().hex
	}
	s := &KubernetesPodSandbox{podName: PodName(id), cfg: spec, log: spec.logger, kc: c, client: c.cs, rest: c.rest, tel: c.tel}
	s.id.Store(&id)
	if s.log == nil {
		s.log = c.log
	}
	s.log = s.log.With("sandbox", id, "pod", s.podName, "namespace", spec.namespace)
	if err := s.resolveToken(); err != nil {
		return nil, err
	}
	s.Touch()
	return s, nil
}

// canServe checks what a spec needs of the client: a REST configuration for pods/exec,
// pods/proxy and port-forward.
func (c *Client) canServe(spec config) error {
	if c.rest == nil && (spec.mode == ModeAPI || spec.reach == ReachPortForward || spec.reach == ReachProxy) {
		return fmt.Errorf("%w: %s needs a REST configuration: give NewClient one next to WithClientset", ErrInvalidArgument, transportName(spec))
	}
	return nil
}

func transportName(c config) string {
	if c.mode == ModeAPI {
		return "ModeAPI (pods/exec)"
	}
	return "ModeHTTP with reach " + string(c.reach)
}

// resolveToken picks the HTTP-mode token. A template that presets SANDBOX_EXEC_TOKEN keeps its value
// and the client uses the same one (upstream silently sent a different token: 401 on every call).
func (s *KubernetesPodSandbox) resolveToken() error {
	s.token = s.cfg.execToken
	if t := s.cfg.podTemplate; t != nil && len(t.Spec.Containers) > 0 {
		for _, e := range t.Spec.Containers[0].Env {
			if e.Name != wire.EnvToken {
				continue
			}
			switch {
			case e.ValueFrom != nil && s.cfg.execToken == "":
				return fmt.Errorf("%w: the pod template sets %s from a reference; pass the same value with WithExecToken", ErrInvalidArgument, wire.EnvToken)
			case e.ValueFrom == nil && s.token != "" && s.token != e.Value:
				return fmt.Errorf("%w: the pod template's %s differs from WithExecToken; the server would refuse every request", ErrInvalidArgument, wire.EnvToken)
			case e.ValueFrom == nil:
				s.token = e.Value
			}
		}
	}
	if s.token == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		s.token = base64.RawURLEncoding.EncodeToString(b)
	}
	return nil
}

// LoadConfig returns the client configuration by client-go's standard rules: the kubeconfig at path
// when given; else the in-cluster configuration when inCluster is true, or nil and the process runs
// in a pod; else $KUBECONFIG or ~/.kube/config.
func LoadConfig(path string, inCluster *bool) (*rest.Config, error) {
	wrap := func(err error) error { return fmt.Errorf("podsandbox: failed to load kubernetes config: %w", err) }
	if path != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, wrap(err)
		}
		return cfg, nil
	}
	if inCluster == nil || *inCluster {
		cfg, err := rest.InClusterConfig()
		if err == nil {
			return cfg, nil
		}
		if inCluster != nil {
			return nil, wrap(err)
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, wrap(err)
	}
	return cfg, nil
}

// inCluster reports whether the process runs in a pod with a service-account token.
func inCluster() bool {
	_, err := os.Stat("/var/run/secrets/kubernetes.io/serviceaccount/token")
	return err == nil && os.Getenv("KUBERNETES_SERVICE_HOST") != ""
}

// ID returns the sandbox id as given (or generated); PodName returns the pod's name.
func (s *KubernetesPodSandbox) ID() string { return *s.id.Load() }

// PodName returns the name of the sandbox's pod.
func (s *KubernetesPodSandbox) PodName() string { return s.podName }

// Namespace returns the pod's namespace.
func (s *KubernetesPodSandbox) Namespace() string { return s.cfg.namespace }

// Mode returns the transport mode.
func (s *KubernetesPodSandbox) Mode() Mode { return s.cfg.mode }

// WorkDir returns the work dir.
func (s *KubernetesPodSandbox) WorkDir() string { return s.cfg.workDir }

// LastActivity returns when the sandbox was last used.
func (s *KubernetesPodSandbox) LastActivity() time.Time { return time.Unix(0, s.lastActivity.Load()) }

// Touch marks the sandbox as used now. It also moves the pod's expiry annotation forward (see
// Reap), at most once per quarter of the idle timeout and off the caller's path.
func (s *KubernetesPodSandbox) Touch() {
	now := time.Now().UnixNano()
	s.lastActivity.Store(now)
	last := s.lastExtend.Load()
	if last != 0 && time.Duration(now-last) >= s.extendEvery() && s.lastExtend.CompareAndSwap(last, now) {
		s.extendExpiryAsync()
	}
}

// IdleTimeout returns the idle timeout set with WithIdleTimeout.
func (s *KubernetesPodSandbox) IdleTimeout() time.Duration { return s.cfg.idleTimeout }

// Start creates the pod (and, in HTTP mode, the Secret holding its token), then waits with a watch
// until the sandbox is usable. It fails early with a *StartupError naming the reason and the last
// events when the pod cannot start (image missing, crash, unschedulable past a grace, ...), and then
// deletes the pod it created, and only that one. A pod of the same name that podsandbox made for
// the same sandbox id is adopted; any other is left alone and reported as a *ConflictError.
// Calling Start on a started sandbox is a no-op; after Stop it creates a new pod.
func (s *KubernetesPodSandbox) Start(ctx context.Context) error {
	return s.start(ctx, nil)
}

// start is Start; with existing (a pod of this sandbox's name read from the watch cache) it adopts
// that pod instead of creating one.
func (s *KubernetesPodSandbox) start(ctx context.Context, existing *corev1.Pod) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started && !s.stopped {
		return nil
	}
	s.started, s.stopped, s.healthy = false, false, false
	s.secret = "" // a new pod gets a Secret of its own
	t0 := time.Now()
	ctx, span := s.tel.tracer.Start(ctx, "podsandbox.Start", trace.WithAttributes(
		append(s.spanAttrs(), semconv.ContainerImageName(s.cfg.image))...))
	defer func() {
		attrs := []attribute.KeyValue{attrMode.String(string(s.cfg.mode))}
		if err != nil {
			attrs = append(attrs, errorType(err))
		}
		s.tel.startDur.Record(ctx, time.Since(t0).Seconds(), metric.WithAttributes(attrs...))
		endSpan(span, err)
	}()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.startupTimeout)
	defer cancel()

	sub, err := s.kc.subscribe(s.cfg.namespace, s.podName)
	if err != nil {
		return err
	}
	var pod *corev1.Pod
	var created bool
	if existing != nil {
		pod, err = s.adopt(ctx, existing)
	} else {
		pod, created, err = s.createOrAdopt(ctx)
	}
	if err != nil {
		sub.close()
		return err
	}
	s.watch, s.uid = sub, pod.UID
	uid := pod.UID
	s.startedUID.Store(&uid)
	s.log.Debug("pod created", "adopted", !created, "uid", pod.UID, "elapsed", time.Since(t0))
	if created {
		span.AddEvent("pod created", trace.WithAttributes(semconv.K8SPodUID(string(pod.UID))))
	} else {
		span.AddEvent("pod adopted", trace.WithAttributes(semconv.K8SPodUID(string(pod.UID))))
	}

	ready, err := s.waitUsable(ctx, t0)
	if err != nil {
		if created {
			s.deleteOwned(context.WithoutCancel(ctx))
		}
		sub.close()
		s.watch = nil
		return err
	}
	s.podIP = ready.Status.PodIP
	s.started = true
	if s.cfg.agent != nil {
		// The agent opens before Start returns, so a warm pool's member is ready to answer when
		// claimed. An agent that cannot run here only logs why: calls take the shell paths.
		if s.tr == nil {
			s.tr = s.newTransport()
		}
		if at, ok := s.tr.(*agentTransport); ok {
			_, err := at.link.get(ctx)
			if err != nil && !errors.Is(err, errNoAgent) {
				s.log.Warn("the agent did not open at Start; the first call tries again", "err", err)
			}
			span.AddEvent("agent", trace.WithAttributes(attribute.Bool("podsandbox.agent.ready", err == nil)))
		}
	}
	s.bg.start()
	s.lastExtend.Store(time.Now().UnixNano())
	s.Touch()
	if time.Since(t0) >= s.extendEvery() {
		s.extendExpiryAsync() // a slow start used up part of the idle time set at creation
	}
	s.log.Info("sandbox ready", "mode", s.cfg.mode, "ip", s.podIP, "elapsed", time.Since(t0).Round(time.Millisecond))
	return nil
}

// createOrAdopt creates the Secret (HTTP mode) and the pod, handling name conflicts.
func (s *KubernetesPodSandbox) createOrAdopt(ctx context.Context) (*corev1.Pod, bool, error) {
	if s.cfg.mode == ModeHTTP {
		if err := s.ensureSecret(ctx); err != nil {
			return nil, false, err
		}
	}
	mine, err := s.ensurePolicy(ctx)
	if err != nil {
		s.dropUnowned(ctx, false)
		return nil, false, err
	}
	pods := s.client.CoreV1().Pods(s.cfg.namespace)
	for {
		pod, err := pods.Create(ctx, s.buildPod(), metav1.CreateOptions{})
		if err == nil {
			if s.cfg.mode == ModeHTTP {
				s.ownSecret(ctx, pod)
			}
			s.ownPolicy(ctx, pod)
			return pod, true, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			s.dropUnowned(ctx, mine)
			return nil, false, s.createError(err)
		}
		old, gerr := pods.Get(ctx, s.podName, metav1.GetOptions{})
		if apierrors.IsNotFound(gerr) {
			continue // deleted in between: create again
		}
		if gerr != nil {
			s.dropUnowned(ctx, mine)
			return nil, false, s.createError(gerr)
		}
		if reason := s.adoptable(old); reason != "" {
			s.dropUnowned(ctx, mine)
			return nil, false, &ConflictError{Pod: s.podName, Reason: reason}
		}
		if old.DeletionTimestamp == nil {
			if s.cfg.mode == ModeHTTP {
				if err := s.adoptSecret(ctx, old); err != nil {
					return nil, false, err
				}
			}
			s.ownPolicy(ctx, old)
			return old, false, nil
		}
		// Ours but on its way out (a quick re-create after Stop): wait until it is gone.
		s.log.Debug("waiting for terminating pod of the same name", "uid", old.UID)
		if err := s.waitGone(ctx, old.UID); err != nil {
			return nil, false, err
		}
	}
}

// adopt takes over pod, which must be this sandbox's and not terminating, without creating one.
func (s *KubernetesPodSandbox) adopt(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error) {
	if reason := s.adoptable(pod); reason != "" || pod.DeletionTimestamp != nil {
		if reason == "" {
			reason = "it is terminating"
		}
		return nil, &ConflictError{Pod: s.podName, Reason: reason}
	}
	if s.cfg.mode == ModeHTTP {
		if err := s.adoptSecret(ctx, pod); err != nil {
			return nil, err
		}
	}
	if _, err := s.ensurePolicy(ctx); err != nil {
		return nil, err
	}
	s.ownPolicy(ctx, pod)
	return pod, nil
}

// dropUnowned deletes what createOrAdopt made before it failed to make a pod: the Secret, and the
// NetworkPolicy when policy says it made it (nothing owns them yet, so the garbage collector
// would not).
func (s *KubernetesPodSandbox) dropUnowned(ctx context.Context, policy bool) {
	ctx = context.WithoutCancel(ctx)
	errs := []error{s.deleteSecret(ctx)}
	if policy {
		errs = append(errs, s.deletePolicy(ctx))
	}
	if err := errors.Join(errs...); err != nil {
		s.log.Warn("cleanup after a failed create", "err", err)
	}
}

// adoptable returns "" when pod is a podsandbox pod for this sandbox id and mode, else why not.
func (s *KubernetesPodSandbox) adoptable(pod *corev1.Pod) string {
	switch {
	case pod.Labels[LabelManagedBy] != ManagedByValue:
		return "it is not managed by podsandbox"
	case pod.Annotations[AnnotationSandboxID] != s.ID():
		return fmt.Sprintf("it belongs to sandbox id %q", pod.Annotations[AnnotationSandboxID])
	case pod.Annotations[AnnotationMode] != string(s.cfg.mode):
		return fmt.Sprintf("it was made for mode %q", pod.Annotations[AnnotationMode])
	case pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded:
		return "it has finished (" + string(pod.Status.Phase) + "); delete it or use another id"
	}
	return ""
}

func (s *KubernetesPodSandbox) createError(err error) error {
	// The RuntimeClass admission plugin refuses a pod whose class does not exist.
	if (apierrors.IsForbidden(err) || apierrors.IsNotFound(err)) && strings.Contains(err.Error(), "RuntimeClass") {
		return &StartupError{Pod: s.podName, Reason: "RuntimeClassNotFound", Message: fmt.Sprintf(
			"%v (kubectl get runtimeclass lists the classes there are; install the runtime and its RuntimeClass, or drop WithRuntimeClass)", err)}
	}
	hint := ""
	switch {
	case apierrors.IsForbidden(err):
		hint = " (check RBAC: the library needs pods create/get/list/watch/delete, pods/exec create+get, pods/proxy, secrets, events list; see deploy/rbac.yaml)"
	case apierrors.IsNotFound(err):
		hint = " (does the namespace exist?)"
	}
	return fmt.Errorf("podsandbox: failed to create sandbox pod %s: %w%s", s.podName, err, hint)
}

func (s *KubernetesPodSandbox) waitGone(ctx context.Context, uid types.UID) error {
	ch, err := s.kc.subscribe(s.cfg.namespace, s.podName)
	if err != nil {
		return err
	}
	defer ch.close()
	if !ch.waitSynced(ctx) { // before the first list, "no pod" would mean nothing
		return &StartupError{Pod: s.podName, Reason: "Timeout", Message: "the pod watch did not sync"}
	}
	for {
		p := ch.pod()
		if p == nil || p.UID != uid {
			return nil
		}
		select {
		case <-ctx.Done():
			return &StartupError{Pod: s.podName, Reason: "Timeout", Message: "the previous pod of this sandbox is still terminating"}
		case <-ch.changed():
		}
	}
}

// Stop releases the sandbox: it closes the transport and, with delete-on-stop (the default),
// deletes the pod (UID precondition, so a newer pod of the same name is never touched) and its
// token Secret. It is idempotent; a pod that is already gone is not an error.
func (s *KubernetesPodSandbox) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.detach()
	if s.ownsKC {
		defer s.kc.closeIdle() // the watch stopped with detach; nothing of the private client stays
	}
	if !s.cfg.deleteOnStop || s.uid == "" {
		return nil
	}
	return s.deleteOwned(ctx)
}

// detach marks the sandbox stopped, waits for its background work, and drops its transport and
// watch; s.mu is held.
func (s *KubernetesPodSandbox) detach() {
	s.stopped = true
	s.bg.stop()
	if s.tr != nil {
		s.tr.close()
		s.tr = nil
	}
	if s.watch != nil {
		s.watch.close()
		s.watch = nil
	}
}

// deleteOwned deletes this sandbox's pod by UID and its Secret; NotFound is success.
func (s *KubernetesPodSandbox) deleteOwned(ctx context.Context) error {
	var errs []error
	if s.uid != "" {
		uid := s.uid
		err := s.client.CoreV1().Pods(s.cfg.namespace).Delete(ctx, s.podName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			errs = append(errs, fmt.Errorf("delete pod %s: %w", s.podName, err))
		}
	}
	errs = append(errs, s.deleteSecret(ctx), s.deletePolicy(ctx))
	if err := errors.Join(errs...); err != nil {
		s.log.Warn("cleanup failed", "err", err)
		return fmt.Errorf("podsandbox: %w", err)
	}
	return nil
}

// deleteSecret deletes the HTTP-mode token Secret; NotFound is success.
func (s *KubernetesPodSandbox) deleteSecret(ctx context.Context) error {
	if s.cfg.mode != ModeHTTP {
		return nil
	}
	err := s.client.CoreV1().Secrets(s.cfg.namespace).Delete(ctx, s.secretName(), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete secret %s: %w", s.secretName(), err)
	}
	return nil
}

// IsAlive reports whether the sandbox is usable now: started, not stopped, and its pod Running,
// Ready (in HTTP mode, or its server answered during Start) and not terminating. It reads the
// state kept by a shared watch and makes no API request.
func (s *KubernetesPodSandbox) IsAlive(ctx context.Context) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.stopped || s.watch == nil {
		return false
	}
	p := s.watch.pod()
	if p == nil || p.UID != s.uid || p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return false
	}
	return podReady(p) || (s.healthy && containerRunning(p))
}

// transportFor returns the started transport or why there is none.
// A pod the watch already shows gone gets no call: it would only wait for a dead address.
func (s *KubernetesPodSandbox) transportFor() (transport, error) {
	s.mu.Lock()
	switch {
	case s.stopped:
		s.mu.Unlock()
		return nil, ErrStopped
	case !s.started:
		s.mu.Unlock()
		return nil, ErrNotStarted
	}
	if s.tr == nil {
		s.tr = s.newTransport()
	}
	tr := s.tr
	s.mu.Unlock()
	if s.gone() {
		return nil, fmt.Errorf("%w: pod %s was deleted, evicted or has ended: start a new sandbox", ErrSandboxGone, s.podName)
	}
	return tr, nil
}

func (s *KubernetesPodSandbox) newTransport() transport {
	if s.cfg.mode == ModeAPI {
		if s.cfg.agent != nil {
			return newAgentTransport(newAPITransport(s), s.cfg.agent)
		}
		return newAPITransport(s)
	}
	return newHTTPTransport(s, s.token)
}

// Via says how the sandbox's last command or file operation reached its container: ViaServer in
// ModeHTTP; in ModeAPI ViaAgent (WithAgent), ViaChannel (WithExecChannels) or ViaExec (a pods/exec
// per call, also the fallback of the other two). It is "" in ModeAPI before the first call.
func (s *KubernetesPodSandbox) Via() string {
	if s.cfg.mode == ModeHTTP {
		return ViaServer
	}
	v, _ := s.via.Load().(string)
	return v
}

// gone reports whether the pod this sandbox started is deleted, terminating or finished, or its
// container has ended for good (the pod never restarts it): what the watch knows now.
func (s *KubernetesPodSandbox) gone() bool {
	s.mu.Lock()
	w, uid := s.watch, s.uid
	s.mu.Unlock()
	if w == nil {
		return false
	}
	p := w.pod()
	if p == nil || p.UID != uid || p.DeletionTimestamp != nil ||
		p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
		return true
	}
	if p.Spec.RestartPolicy == corev1.RestartPolicyNever {
		for _, c := range p.Status.ContainerStatuses {
			if c.State.Terminated != nil {
				return true // the kubelet marks the pod Failed a moment later
			}
		}
	}
	return false
}

// goneGrace is how long a call waits, once the watch shows its pod gone, for the in-pod server's
// own last answer (it stops its commands on SIGTERM and says so) before ending the call itself.
const goneGrace = time.Second

// whileAlive returns ctx, cancelled with an ErrSandboxGone cause goneGrace after the watch first
// shows the pod gone. A long call must not wait on a connection whose last packets the dying pod
// never delivers (a NetworkPolicy enforcer may drop them as the pod goes). stop ends the watchdog
// and waits for it.
func (s *KubernetesPodSandbox) whileAlive(ctx context.Context) (_ context.Context, stop func()) {
	sub, err := s.kc.subscribe(s.cfg.namespace, s.podName)
	if err != nil {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var grace <-chan time.Time
		for {
			if grace == nil && s.gone() {
				grace = time.After(goneGrace)
			}
			select {
			case <-ctx.Done():
				return
			case <-sub.changed():
			case <-grace:
				cancel(fmt.Errorf("%w: pod %s: it was deleted or ended, and the in-pod server's last answer did not arrive within %s", ErrSandboxGone, s.podName, goneGrace))
				return
			}
		}
	}()
	return ctx, func() {
		cancel(nil)
		<-done
		sub.close()
	}
}

// goneCause returns the ErrSandboxGone that whileAlive cancelled ctx with, or nil.
func goneCause(ctx context.Context) error {
	if err := context.Cause(ctx); errors.Is(err, ErrSandboxGone) {
		return err
	}
	return nil
}

// goneSettle is how long a failed call waits for the watch to explain its failure. The kubelet
// kills a pod's containers (eviction, a container's OOM) a moment before it writes the pod's
// status, so the call's stream breaks first; a caller should still learn that the sandbox is gone.
const goneSettle = time.Second

// wrapErr turns a transport failure on a pod that went away into ErrSandboxGone. A failure the
// watch cannot explain yet waits up to goneSettle for it to; errors that are answers (a path, an
// argument, the caller's context, a stopped sandbox) return at once.
func (s *KubernetesPodSandbox) wrapErr(ctx context.Context, err error) error {
	return s.wrapErrWithin(ctx, err, goneSettle)
}

// wrapErrWithin is wrapErr waiting up to settle (0: what the watch knows now).
func (s *KubernetesPodSandbox) wrapErrWithin(ctx context.Context, err error, settle time.Duration) error {
	if err == nil || errors.Is(err, ErrSandboxGone) {
		return err
	}
	if gone := goneCause(ctx); gone != nil {
		return gone // the operation's watchdog ended it
	}
	var pe *PathError
	var oe *OffsetError
	var fe *FileTooLargeError
	var ee *EditError
	if errors.As(err, &pe) || errors.As(err, &oe) || errors.As(err, &fe) || errors.As(err, &ee) ||
		errors.Is(err, ErrInvalidArgument) || errors.Is(err, ErrStopped) || errors.Is(err, ErrNotStarted) ||
		errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrUnsupportedImage) || errors.Is(err, ErrNoProcess) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		return err
	}
	if s.goneWithin(ctx, settle) {
		return fmt.Errorf("%w: pod %s: %w", ErrSandboxGone, s.podName, err)
	}
	return err
}

// goneWithin reports whether the watch shows the pod gone now or within d.
func (s *KubernetesPodSandbox) goneWithin(ctx context.Context, d time.Duration) bool {
	if gone := s.gone(); gone || d <= 0 {
		return gone
	}
	sub, err := s.kc.subscribe(s.cfg.namespace, s.podName)
	if err != nil {
		return false
	}
	defer sub.close()
	t := time.NewTimer(d)
	defer t.Stop()
	for !s.gone() {
		select {
		case <-sub.changed():
		case <-t.C:
			return false
		case <-ctx.Done():
			return s.gone()
		}
	}
	return true
}

// podURL returns the API server URL of the pod's subresource, with suffix after the pod name (a
// port for pods/proxy).
func (s *KubernetesPodSandbox) podURL(suffix, sub string) string {
	host := strings.TrimSuffix(s.rest.Host, "/")
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	return host + "/api/v1/namespaces/" + s.cfg.namespace + "/pods/" + s.podName + suffix + "/" + sub
}

func (s *KubernetesPodSandbox) resolve(p string) string { return fileops.Resolve(p, s.cfg.workDir) }

// MaxCommandBytes is the longest command Execute takes: the shell in the pod gets the command as
// one exec argument, and Linux limits one argument to 32 pages (MAX_ARG_STRLEN) with its NUL.
// Longer scripts go in a file: Write it, then Execute "sh FILE".
const MaxCommandBytes = 32*4096 - 1

// checkText refuses what no transport can carry as it is: a NUL byte (exec arguments and file names
// end at one) and bytes that are not UTF-8 (the requests' JSON and the container runtime's protobuf
// strings hold only UTF-8; JSON would silently replace them). Both transports refuse alike.
func checkText(what, s string) error {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return fmt.Errorf("%w: the %s has a NUL byte at offset %d: no file name or command can hold one", ErrInvalidArgument, what, i)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: the %s is not valid UTF-8: sandbox paths and commands travel as UTF-8 text (reach such a file name through a glob in a command, or printf's octal escapes)", ErrInvalidArgument, what)
	}
	return nil
}

// begin starts file operation name: its span and timer, the checks of texts (name/value pairs,
// see checkText), activity, and the transport. The caller ends op, also when err is not nil.
func (s *KubernetesPodSandbox) begin(ctx context.Context, name string, texts ...string) (context.Context, *sandboxOp, transport, error) {
	ctx, op := s.traceOp(ctx, name)
	if err := checkTexts(texts...); err != nil {
		return ctx, op, nil, err
	}
	s.Touch()
	tr, err := s.transportFor()
	if err == nil && s.cfg.mode == ModeHTTP {
		// As for Execute: a request the dying pod never answers ends when the watch shows it gone.
		ctx, op.stop = s.whileAlive(ctx)
	}
	return ctx, op, tr, err
}

// checkTexts checks name/value pairs with checkText and returns the first error.
func checkTexts(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := checkText(pairs[i], pairs[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// Execute runs command with /bin/sh -c in the work dir. See ExecOption for timeouts, output
// limits, stdin and streaming. The exit code is exact (0-255, 124 on timeout); a timeout or a
// cancelled ctx kills the command's whole process tree in the pod.
func (s *KubernetesPodSandbox) Execute(ctx context.Context, command string, opts ...ExecOption) (resp *ExecuteResponse, err error) {
	ctx, op := s.traceOp(ctx, "Execute")
	defer func() { op.end(ctx, err, execAttrs(resp)...) }()
	if len(command) > MaxCommandBytes {
		return nil, fmt.Errorf("%w: the command is %d bytes, more than the %d bytes Linux lets one exec argument have: Write the script to a file and Execute \"sh FILE\"", ErrInvalidArgument, len(command), MaxCommandBytes)
	}
	if err := checkText("command", command); err != nil {
		return nil, err
	}
	s.Touch()
	c := ResolveExecOptions(opts...)
	if c.OpenStdin {
		return nil, fmt.Errorf("%w: WithOpenStdin is for StartProcess; Execute takes its input with WithStdin", ErrInvalidArgument)
	}
	if err := checkPTY(c); err != nil {
		return nil, err
	}
	s.mu.Lock()
	senv := s.sessionEnv
	s.mu.Unlock()
	if len(senv) > 0 && s.cfg.mode == ModeAPI {
		env := maps.Clone(senv)
		maps.Copy(env, c.Env)
		c.Env = env
	}
	for k, v := range c.Env {
		if !envName.MatchString(k) {
			return nil, fmt.Errorf("%w: env name %q", ErrInvalidArgument, k)
		}
		if err := checkText("value of env "+k, v); err != nil {
			return nil, err
		}
	}
	if err := checkText("working directory", c.Dir); err != nil {
		return nil, err
	}
	if c.Dir != "" {
		c.Dir = s.resolve(c.Dir)
	}
	if c.Reattach || c.RequestID != "" {
		resp, err = s.executeReattach(ctx, command, c)
		s.Touch()
		return resp, err
	}
	tr, err := s.transportFor()
	if err != nil {
		return nil, err
	}
	resp, err = tr.exec(ctx, command, c)
	s.Touch()
	settle := goneSettle
	if c.quick {
		settle = 0
	}
	return resp, s.wrapErrWithin(ctx, err, settle)
}

// Read returns lines [offset, offset+limit) of the file numbered "%6d\t", with
// "\n\n... (N more lines)" when more follow. Errors: *PathError (ErrNotFound, ErrIsDirectory),
// *OffsetError, *FileTooLargeError.
func (s *KubernetesPodSandbox) Read(ctx context.Context, path string, offset, limit int) (_ string, err error) {
	ctx, op, tr, err := s.begin(ctx, "Read", "path", path)
	defer func() { op.end(ctx, err) }()
	if err != nil {
		return "", err
	}
	out, err := tr.read(ctx, s.resolve(path), offset, limit)
	return out, s.wrapErr(ctx, err)
}

// ReadWithBytes returns what Read returns together with the file's bytes, from one fetch: Read's
// text is the shared formatter applied to those bytes on either transport.
func (s *KubernetesPodSandbox) ReadWithBytes(ctx context.Context, path string, offset, limit int) (string, []byte, error) {
	data, err := s.ReadBytes(ctx, path)
	if err != nil {
		return "", nil, err
	}
	text, err := formatRead(s.resolve(path), data, offset, limit)
	if err != nil {
		return "", nil, err
	}
	return text, data, nil
}

var _ TextBytesReader = (*KubernetesPodSandbox)(nil)

// ReadBytes returns the file's bytes exactly.
func (s *KubernetesPodSandbox) ReadBytes(ctx context.Context, path string) (data []byte, err error) {
	ctx, op, tr, err := s.begin(ctx, "ReadBytes", "path", path)
	defer func() { op.end(ctx, err, attrFileBytes.Int(len(data))) }()
	if err != nil {
		return nil, err
	}
	b, err := tr.readBytes(ctx, s.resolve(path))
	return b, s.wrapErr(ctx, err)
}

// Write creates or replaces the file atomically (a temporary file renamed into place), creating
// parent directories. The content travels as a request body (HTTP) or exec stdin (API), never in a
// URL or argv.
func (s *KubernetesPodSandbox) Write(ctx context.Context, path string, content []byte) (_ *WriteResult, err error) {
	ctx, op, tr, err := s.begin(ctx, "Write", "path", path)
	defer func() { op.end(ctx, err, attrFileBytes.Int(len(content))) }()
	if err != nil {
		return nil, err
	}
	p := s.resolve(path)
	if int64(len(content)) > s.cfg.maxFileBytes {
		return nil, &FileTooLargeError{Path: p, Size: int64(len(content)), Limit: s.cfg.maxFileBytes}
	}
	n, err := tr.write(ctx, p, content)
	if err != nil {
		return nil, s.wrapErr(ctx, err)
	}
	return &WriteResult{Path: p, BytesWritten: n}, nil
}

// Edit replaces old with new in the file (upstream's G2 rules and wording, see *EditError), except
// that an empty existing file is not "not found", an empty old is refused, and a large file is never
// cut: files over the limit are refused whole.
func (s *KubernetesPodSandbox) Edit(ctx context.Context, path, old, new string, replaceAll bool) (_ *EditResult, err error) {
	ctx, op, tr, err := s.begin(ctx, "Edit", "path", path, "old string", old, "new string", new)
	defer func() { op.end(ctx, err) }()
	if err != nil {
		return nil, err
	}
	p := s.resolve(path)
	if old == "" {
		return nil, fmt.Errorf("%w: old string must not be empty", ErrInvalidArgument)
	}
	n, err := tr.edit(ctx, p, old, new, replaceAll)
	if err != nil {
		return nil, s.wrapErr(ctx, err)
	}
	return &EditResult{Path: p, Occurrences: n}, nil
}

// LsInfo lists a directory, directories first, then by name.
func (s *KubernetesPodSandbox) LsInfo(ctx context.Context, path string) (_ []FileInfo, err error) {
	ctx, op, tr, err := s.begin(ctx, "Ls", "path", path)
	defer func() { op.end(ctx, err) }()
	if err != nil {
		return nil, err
	}
	es, err := tr.ls(ctx, s.resolve(path))
	if err != nil {
		return nil, s.wrapErr(ctx, err)
	}
	return toFileInfos(es), nil
}

// GlobInfo finds regular files under path matching pattern; see FileSystem.
func (s *KubernetesPodSandbox) GlobInfo(ctx context.Context, pattern, path string) (_ []FileInfo, err error) {
	ctx, op, tr, err := s.begin(ctx, "Glob", "glob pattern", pattern, "path", path)
	defer func() { op.end(ctx, err) }()
	if err != nil {
		return nil, err
	}
	if !fileops.ValidGlob(pattern) {
		return nil, fmt.Errorf("%w: glob pattern %q", ErrInvalidArgument, pattern)
	}
	es, err := tr.glob(ctx, fileops.NormalizeGlob(pattern), fileops.GlobRoot(path, s.cfg.workDir))
	if err != nil {
		return nil, s.wrapErr(ctx, err)
	}
	return toFileInfos(es), nil
}

// GrepRaw searches file contents for a regular expression. The pattern is data, never shell or
// option text: patterns starting with "-", quotes, "$()" and newlines are searched for as written.
// It is Go's RE2 syntax; what grep -E in an API-mode pod cannot search for alike (Unicode classes
// such as \pL, NUL bytes) is refused with ErrInvalidArgument on every transport.
func (s *KubernetesPodSandbox) GrepRaw(ctx context.Context, pattern string, opts GrepOptions) (_ []GrepMatch, err error) {
	ctx, op, tr, err := s.begin(ctx, "Grep", "grep pattern", pattern, "path", opts.Path, "glob", opts.Glob)
	defer func() { op.end(ctx, err) }()
	if err != nil {
		return nil, err
	}
	if pattern == "" {
		return nil, fmt.Errorf("%w: empty grep pattern", ErrInvalidArgument)
	}
	if strings.ContainsAny(pattern, "\n\r") {
		return nil, fmt.Errorf("%w: grep matches within one line; the pattern has a line break", ErrInvalidArgument)
	}
	if _, err := ere.Translate(pattern); err != nil { // first: it names a backreference as such
		return nil, fmt.Errorf("%w: grep pattern: %v", ErrInvalidArgument, err)
	}
	if _, err := regexp.Compile(pattern); err != nil {
		return nil, fmt.Errorf("%w: grep pattern: %v", ErrInvalidArgument, err)
	}
	ms, err := tr.grep(ctx, pattern, s.resolve(opts.Path), opts.Glob, opts.IncludeHidden)
	return ms, s.wrapErr(ctx, err)
}

// Exists reports whether path is a regular file.
func (s *KubernetesPodSandbox) Exists(ctx context.Context, path string) (_ bool, err error) {
	ctx, op, tr, err := s.begin(ctx, "Exists", "path", path)
	defer func() { op.end(ctx, err) }()
	if err != nil {
		return false, err
	}
	ok, err := tr.exists(ctx, s.resolve(path))
	return ok, s.wrapErr(ctx, err)
}

func toFileInfos(es []fileops.Entry) []FileInfo {
	out := make([]FileInfo, len(es))
	for i, e := range es {
		out[i] = FileInfo{Name: e.Name, Path: e.Path, IsDir: e.IsDir, Size: e.Size, ModifiedAt: e.ModTime}
	}
	return out
}
