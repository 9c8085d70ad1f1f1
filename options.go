package podsandbox

import (
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"

	"github.com/podsandbox/podsandbox/internal/wire"
)

// Mode selects how the library talks to the sandbox pod.
type Mode string

const (
	// ModeHTTP talks to the in-pod server (cmd/sandbox-server) over HTTP: the fastest transport.
	// The image must run the server (for example podsandbox's server image).
	ModeHTTP Mode = "http"
	// ModeAPI runs everything through the Kubernetes pods/exec API (WebSocket v5, SPDY fallback).
	// Any image with /bin/sh and timeout works.
	ModeAPI Mode = "api"
)

// Reach says how an HTTP-mode client reaches the in-pod server.
type Reach string

const (
	// ReachAuto uses the pod IP when running inside a cluster and the API server's pods/proxy
	// otherwise (so it works from a laptop against any cluster).
	ReachAuto Reach = "auto"
	// ReachPodIP dials the pod IP directly; the caller must be able to route to pod IPs.
	ReachPodIP Reach = "pod-ip"
	// ReachProxy goes through the API server's pods/proxy subresource.
	ReachProxy Reach = "proxy"
	// ReachPortForward opens a port-forward tunnel through the API server.
	ReachPortForward Reach = "port-forward"
)

// Option configures a sandbox. Options are applied in order and then checked together, once, by
// the constructor (NewKubernetesPodSandbox, Client.NewSandbox, Client.Factory): a contradiction is
// an error that names what to change, never a silent choice. Maps (WithLabels, WithEnv,
// WithNodeSelector) and lists (WithTolerations) add to what earlier calls gave.
type Option func(*config) error

// config is one sandbox's spec: the options folded together, validated by newSpec.
type config struct {
	image            string
	namespace        string
	sandboxID        string
	sessionID        string
	mode             Mode
	port             int
	execToken        string
	podTemplate      *corev1.Pod
	kubeconfigPath   string
	inCluster        *bool
	restConfig       *rest.Config
	startupTimeout   time.Duration
	idleTimeout      time.Duration
	labels           map[string]string
	env              map[string]string
	deleteOnStop     bool
	serviceAccount   string
	logger           *slog.Logger
	reach            Reach
	workDir          string
	resources        corev1.ResourceRequirements
	runtimeClass     *string
	pullPolicy       corev1.PullPolicy
	terminationGrace int64
	activeDeadline   *int64
	workspaceSize    resource.Quantity
	unschedulable    time.Duration
	maxFileBytes     int64
	execChannels     int
	agent            *Agent
	tolerations      []corev1.Toleration
	nodeSelector     map[string]string
	egressAllow      []egressAllow
	ingressFrom      []networkingv1.NetworkPolicyPeer
	openNetwork      bool

	// set records which options were given, by name, so that validation can tell a default from
	// an explicit choice (a template versus WithResources, API mode versus WithPort).
	set map[string]bool
}

func (c *config) mark(name string) {
	if c.set == nil {
		c.set = map[string]bool{}
	}
	c.set[name] = true
}

func defaultConfig() config {
	return config{
		namespace:        "default",
		mode:             ModeHTTP,
		port:             8080,
		startupTimeout:   60 * time.Second,
		idleTimeout:      time.Hour,
		deleteOnStop:     true,
		serviceAccount:   "default",
		reach:            ReachAuto,
		workDir:          "/workspace",
		resources:        DefaultResources(),
		pullPolicy:       corev1.PullIfNotPresent,
		terminationGrace: 1,
		unschedulable:    15 * time.Second,
		maxFileBytes:     DefaultMaxFileBytes,
		execChannels:     DefaultExecChannels,
		workspaceSize:    resource.MustParse("1Gi"),
	}
}

// WithNamespace sets the namespace of the pod (default "default").
func WithNamespace(ns string) Option {
	return func(c *config) error { c.namespace = ns; c.mark("WithNamespace"); return nil }
}

// WithSandboxID sets the sandbox's identity; the pod name is derived from it (see PodName). By
// default a random UUID (32 hex characters, as upstream) is used. A Factory names each sandbox
// after its session and refuses this option.
func WithSandboxID(id string) Option {
	return func(c *config) error { c.sandboxID = id; c.mark("WithSandboxID"); return nil }
}

// WithSessionID is upstream's alias of WithSandboxID. Giving both with different values is an
// error.
func WithSessionID(id string) Option {
	return func(c *config) error { c.sessionID = id; c.mark("WithSessionID"); return nil }
}

// WithMode selects the transport (default ModeHTTP).
func WithMode(m Mode) Option {
	return func(c *config) error {
		if m != ModeHTTP && m != ModeAPI {
			return fmt.Errorf("%w: mode %q: use ModeHTTP or ModeAPI", ErrInvalidArgument, m)
		}
		c.mode = m
		c.mark("WithMode")
		return nil
	}
}

// WithPort sets the in-pod server's port (ModeHTTP only, default 8080).
func WithPort(port int) Option {
	return func(c *config) error {
		if port < 1 || port > 65535 {
			return fmt.Errorf("%w: port %d is not in 1-65535", ErrInvalidArgument, port)
		}
		c.port = port
		c.mark("WithPort")
		return nil
	}
}

// WithExecToken sets the HTTP-mode token instead of a generated one (32 random bytes, URL-safe
// base64, as upstream). ModeHTTP only.
func WithExecToken(token string) Option {
	return func(c *config) error {
		if token == "" {
			return fmt.Errorf("%w: WithExecToken(\"\"): leave the option out to get a generated token", ErrInvalidArgument)
		}
		c.execToken = token
		c.mark("WithExecToken")
		return nil
	}
}

// WithPodTemplate uses pod as the pod body instead of the hardened default. The template is
// copied. The rule, field by field:
//   - always set by podsandbox: the name, the namespace (the template's must agree or be empty),
//     the managed-by and sandbox-id labels, podsandbox's annotations, the first container's image
//     (and its name when empty), and in ModeHTTP the server's port and readiness probe;
//   - merged: labels, env and node selector from the template and the options; the same key with
//     two different values is an error; tolerations are appended;
//   - the options WithResources, WithServiceAccount, WithActiveDeadline, WithRuntimeClass,
//     WithImagePullPolicy and WithWorkDir fill the field when the template leaves it empty; when
//     the template sets it to another value, the constructor returns an error naming both;
//   - nothing of the hardened default (security context, volumes, resources) is added.
func WithPodTemplate(pod *corev1.Pod) Option {
	return func(c *config) error {
		if pod == nil {
			return fmt.Errorf("%w: WithPodTemplate(nil)", ErrInvalidArgument)
		}
		c.podTemplate = pod.DeepCopy()
		c.mark("WithPodTemplate")
		return nil
	}
}

// WithKubeconfig loads the client configuration from this kubeconfig file. It is for
// NewKubernetesPodSandbox; a Client already knows its cluster (see LoadConfig and NewClient).
func WithKubeconfig(path string) Option {
	return func(c *config) error { c.kubeconfigPath = path; c.mark("WithKubeconfig"); return nil }
}

// WithInCluster forces (true) or forbids (false) the in-cluster configuration. By default it is
// used when no kubeconfig path is given and the process runs in a pod. It is for
// NewKubernetesPodSandbox; a Client already knows its cluster.
func WithInCluster(in bool) Option {
	return func(c *config) error { c.inCluster = &in; c.mark("WithInCluster"); return nil }
}

// WithRESTConfig uses cfg instead of loading a kubeconfig. It is for NewKubernetesPodSandbox; a
// Client already knows its cluster (NewClient(cfg)).
func WithRESTConfig(cfg *rest.Config) Option {
	return func(c *config) error {
		if cfg == nil {
			return fmt.Errorf("%w: WithRESTConfig(nil)", ErrInvalidArgument)
		}
		c.restConfig = rest.CopyConfig(cfg)
		c.mark("WithRESTConfig")
		return nil
	}
}

// WithStartupTimeout bounds Start (default 60 s), image pull included.
func WithStartupTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: startup timeout %s must be positive", ErrInvalidArgument, d)
		}
		c.startupTimeout = d
		c.mark("WithStartupTimeout")
		return nil
	}
}

// WithIdleTimeout sets how long the sandbox may stay unused before a SessionManager releases it
// and a Reaper may delete its pod (default 1 h). It must be positive.
func WithIdleTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: idle timeout %s must be positive (a zero timeout would let the reaper delete the pod at once)", ErrInvalidArgument, d)
		}
		c.idleTimeout = d
		c.mark("WithIdleTimeout")
		return nil
	}
}

// WithLabels adds pod labels; later calls add to earlier ones (a later value wins for a key).
// podsandbox's own labels (managed-by, sandbox id, pool) cannot be set.
func WithLabels(l map[string]string) Option {
	return func(c *config) error {
		c.labels = mergeInto(c.labels, l)
		c.mark("WithLabels")
		return nil
	}
}

// WithEnv adds container environment variables; later calls add to earlier ones.
func WithEnv(env map[string]string) Option {
	return func(c *config) error {
		c.env = mergeInto(c.env, env)
		c.mark("WithEnv")
		return nil
	}
}

func mergeInto(dst, src map[string]string) map[string]string {
	out := maps.Clone(dst)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, src)
	return out
}

// WithDeleteOnStop controls whether Stop deletes the pod (default true; false keeps it for a
// post-mortem).
func WithDeleteOnStop(del bool) Option {
	return func(c *config) error { c.deleteOnStop = del; c.mark("WithDeleteOnStop"); return nil }
}

// WithServiceAccount sets spec.serviceAccountName (default "default"; its token is never mounted).
func WithServiceAccount(name string) Option {
	return func(c *config) error { c.serviceAccount = name; c.mark("WithServiceAccount"); return nil }
}

// WithLogger sets the sandbox's logger (default: its Client's, else slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error { c.logger = l; c.mark("WithLogger"); return nil }
}

// WithReach sets how the HTTP transport reaches the pod (ModeHTTP only, default ReachAuto).
func WithReach(r Reach) Option {
	return func(c *config) error {
		switch r {
		case ReachAuto, ReachPodIP, ReachProxy, ReachPortForward:
			c.reach = r
			c.mark("WithReach")
			return nil
		}
		return fmt.Errorf("%w: reach %q", ErrInvalidArgument, r)
	}
}

// WithWorkDir sets the work dir (default /workspace): the container's working directory, the
// writable emptyDir, HOME, and the base of relative paths.
func WithWorkDir(dir string) Option {
	return func(c *config) error {
		if len(dir) == 0 || dir[0] != '/' {
			return fmt.Errorf("%w: work dir %q must be absolute", ErrInvalidArgument, dir)
		}
		c.workDir = dir
		c.mark("WithWorkDir")
		return nil
	}
}

// WithResources replaces the default requests and limits (256Mi/100m requests, 768Mi/1 CPU limits).
func WithResources(r corev1.ResourceRequirements) Option {
	return func(c *config) error { c.resources = r; c.mark("WithResources"); return nil }
}

// WithRuntimeClass sets spec.runtimeClassName (for example gVisor or Kata).
func WithRuntimeClass(name string) Option {
	return func(c *config) error {
		if name == "" {
			return fmt.Errorf("%w: WithRuntimeClass(\"\"): leave the option out for the cluster's default runtime", ErrInvalidArgument)
		}
		c.runtimeClass = &name
		c.mark("WithRuntimeClass")
		return nil
	}
}

// WithEgressAllow adds a destination to the sandbox's egress allow-list: a CIDR ("10.0.0.0/8",
// "192.0.2.7/32", an IPv6 prefix) and the ports it may be reached on, over TCP and UDP; every port
// when none is given. Call it once per destination.
//
// By default every sandbox gets a NetworkPolicy that denies all egress except DNS to the cluster's
// resolver (pods labelled k8s-app=kube-dns in any namespace). Names are not policy: to allow a
// domain, run an egress proxy and allow its address, or use a CNI with FQDN policies.
func WithEgressAllow(cidr string, ports ...int) Option {
	return func(c *config) error {
		bad := func(why string) error {
			return fmt.Errorf("%w: WithEgressAllow(%q, %v): %s", ErrInvalidArgument, cidr, ports, why)
		}
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			a, aerr := netip.ParseAddr(cidr)
			if aerr != nil {
				return bad("not a CIDR (want an address with a prefix length, like 10.1.2.3/32)")
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Masked() != p {
			return bad(fmt.Sprintf("host bits are set; did you mean %s?", p.Masked()))
		}
		e := egressAllow{cidr: p}
		for _, port := range ports {
			if port < 1 || port > 65535 {
				return bad(fmt.Sprintf("port %d is outside 1-65535", port))
			}
			e.ports = append(e.ports, int32(port))
		}
		c.egressAllow = append(c.egressAllow, e)
		c.mark("WithEgressAllow")
		return nil
	}
}

// WithIngressFrom says who may reach an HTTP-mode sandbox's server port: pods or namespaces, as
// NetworkPolicy peers. Without it that port is open to every source (the API server's pods/proxy
// and the kubelet's probes come from the node); every other port is closed either way. A port
// forward enters the pod's own network namespace and is not subject to the policy.
func WithIngressFrom(peers ...networkingv1.NetworkPolicyPeer) Option {
	return func(c *config) error {
		if len(peers) == 0 {
			return fmt.Errorf("%w: WithIngressFrom(): name at least one peer, or leave the option out to open the server port to all", ErrInvalidArgument)
		}
		c.ingressFrom = append(c.ingressFrom, peers...)
		c.mark("WithIngressFrom")
		return nil
	}
}

// WithOpenNetwork runs the sandbox without a NetworkPolicy: it may then connect to every address
// the cluster routes, and anyone may connect to it. Use it only for trusted code, or where the
// cluster enforces a policy of its own.
func WithOpenNetwork() Option {
	return func(c *config) error { c.openNetwork = true; c.mark("WithOpenNetwork"); return nil }
}

// WithImagePullPolicy sets the container's pull policy (default IfNotPresent).
func WithImagePullPolicy(p corev1.PullPolicy) Option {
	return func(c *config) error {
		switch p {
		case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
			c.pullPolicy = p
			c.mark("WithImagePullPolicy")
			return nil
		}
		return fmt.Errorf("%w: image pull policy %q: use Always, IfNotPresent or Never", ErrInvalidArgument, p)
	}
}

// WithActiveDeadline sets spec.activeDeadlineSeconds: a hard lifetime the kubelet enforces even
// when this process is gone.
func WithActiveDeadline(d time.Duration) Option {
	return func(c *config) error {
		s := int64(d / time.Second)
		if s < 1 {
			return fmt.Errorf("%w: active deadline must be at least 1s", ErrInvalidArgument)
		}
		c.activeDeadline = &s
		c.mark("WithActiveDeadline")
		return nil
	}
}

// WithWorkspaceSize sets the size limit of the default pod's /workspace volume (default 1Gi). Writes
// past it are not refused: the kubelet notices within about a minute and evicts the pod, and
// calls then fail with ErrSandboxGone. Size it for what the sandbox's commands may write.
func WithWorkspaceSize(q resource.Quantity) Option {
	return func(c *config) error {
		if q.Sign() <= 0 || q.Cmp(resource.MustParse("1Mi")) < 0 {
			return fmt.Errorf("%w: workspace size %s must be at least 1Mi", ErrInvalidArgument, q.String())
		}
		c.workspaceSize = q
		c.mark("WithWorkspaceSize")
		return nil
	}
}

// WithUnschedulableGrace sets how long Start tolerates an Unschedulable pod (default 15 s) before
// failing; the cluster may still make room.
func WithUnschedulableGrace(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("%w: unschedulable grace %s is negative", ErrInvalidArgument, d)
		}
		c.unschedulable = d
		c.mark("WithUnschedulableGrace")
		return nil
	}
}

// WithMaxFileBytes sets the largest file ReadBytes/Read/Edit accept and Write sends (default
// 64 MiB). Larger files are refused with *FileTooLargeError, never cut.
func WithMaxFileBytes(n int64) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("%w: max file bytes must be positive", ErrInvalidArgument)
		}
		c.maxFileBytes = n
		c.mark("WithMaxFileBytes")
		return nil
	}
}

// WithAgent makes an API-mode sandbox copy the agent (see NewAgent) into its pod's /tmp and run
// every command and file operation through it: one long-lived pods/exec stream carries them all,
// multiplexed over HTTP/2, with HTTP mode's behaviour and about HTTP mode's speed. Start copies
// it once per pod (about 7 MB; a few hundred ms here) and opens the stream before it returns, so
// a warm pool's members are ready to answer when claimed. Each open agent is one exec stream, a
// few hundred KiB of client memory per sandbox. Where the agent cannot run (another machine, /tmp
// not writable or not executable, no dd), calls take the exec channels or a pods/exec each, as
// without it; Via says which path the last call took.
func WithAgent(a *Agent) Option {
	return func(c *config) error {
		if a == nil {
			return fmt.Errorf("%w: WithAgent needs an agent from NewAgent", ErrInvalidArgument)
		}
		c.agent = a
		c.mark("WithAgent")
		return nil
	}
}

// DefaultExecChannels is how many long-lived exec channels an API-mode sandbox keeps by default:
// none yet. Channels are opt-in until they have passed the many-session scale test (each open
// channel is a WebSocket stream of a few hundred KiB of client memory).
const DefaultExecChannels = 0

// WithExecChannels sets how many long-lived exec channels an API-mode sandbox keeps (default
// DefaultExecChannels). A channel is one pods/exec running /bin/sh that carries command after
// command, about ten times faster here than a pods/exec per command; it opens at the first call
// that needs it. n channels run n calls at once and further calls wait for a free one, so a long
// foreground command holds a channel for its whole run. 0 runs every call in a pods/exec of its
// own. 4 is a good start.
func WithExecChannels(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("%w: exec channels must be 0 or more", ErrInvalidArgument)
		}
		c.execChannels = n
		c.mark("WithExecChannels")
		return nil
	}
}

// WithTolerations adds pod tolerations, for example to place sandboxes on a tainted node pool of
// their own; later calls add to earlier ones.
func WithTolerations(t ...corev1.Toleration) Option {
	return func(c *config) error {
		c.tolerations = append(slices.Clone(c.tolerations), t...)
		c.mark("WithTolerations")
		return nil
	}
}

// WithNodeSelector adds spec.nodeSelector entries; later calls add to earlier ones.
func WithNodeSelector(sel map[string]string) Option {
	return func(c *config) error {
		c.nodeSelector = mergeInto(c.nodeSelector, sel)
		c.mark("WithNodeSelector")
		return nil
	}
}

// specUse says which constructor folds the options: the rules differ only for the connection
// options and the sandbox id.
type specUse int

const (
	specStandalone specUse = iota // NewKubernetesPodSandbox: may say which cluster
	specForClient                 // Client.NewSandbox: the client says which cluster
	specForFactory                // Client.Factory: the session names each sandbox
)

// newSpec folds opts into one config and validates it as a whole.
func newSpec(image string, opts []Option, use specUse) (config, error) {
	c := defaultConfig()
	for _, o := range opts {
		if o == nil {
			return c, fmt.Errorf("%w: a nil Option", ErrInvalidArgument)
		}
		if err := o(&c); err != nil {
			return c, err
		}
	}
	c.image = image
	return c, c.validate(use)
}

func (c *config) validate(use specUse) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidArgument}, a...)...)
	}
	if c.image == "" {
		return bad("image is empty")
	}
	if errs := validation.IsDNS1123Label(c.namespace); len(errs) > 0 {
		return bad("namespace %q: %s", c.namespace, errs[0])
	}
	if use != specStandalone {
		for _, o := range []string{"WithKubeconfig", "WithInCluster", "WithRESTConfig"} {
			if c.set[o] {
				return bad("%s: the Client already holds the cluster connection; pass the configuration to NewClient and drop %s", o, o)
			}
		}
	}
	if use == specStandalone && c.set["WithRESTConfig"] && (c.set["WithKubeconfig"] || c.set["WithInCluster"]) {
		return bad("WithRESTConfig and WithKubeconfig/WithInCluster both say which cluster: keep one")
	}
	if use == specForFactory && (c.set["WithSandboxID"] || c.set["WithSessionID"]) {
		return bad("a factory names each sandbox after its session: drop WithSandboxID/WithSessionID")
	}
	if c.sandboxID != "" && c.sessionID != "" && c.sandboxID != c.sessionID {
		return bad("WithSandboxID(%q) and WithSessionID(%q) differ: keep one", c.sandboxID, c.sessionID)
	}
	if c.sandboxID == "" {
		c.sandboxID = c.sessionID
	}
	if c.mode == ModeAPI {
		for _, o := range []string{"WithPort", "WithExecToken", "WithReach"} {
			if c.set[o] {
				return bad("%s is a ModeHTTP setting; ModeAPI has no in-pod server: drop %s or use WithMode(ModeHTTP)", o, o)
			}
		}
	} else {
		for _, o := range []string{"WithExecChannels", "WithAgent"} {
			if c.set[o] {
				return bad("%s is a ModeAPI setting; ModeHTTP talks to its in-pod server: drop it or use WithMode(ModeAPI)", o)
			}
		}
	}
	if c.podTemplate != nil && c.set["WithWorkspaceSize"] {
		return bad("WithWorkspaceSize sizes the default pod's /workspace volume; WithPodTemplate brings its own volumes: set the size in the template")
	}
	if c.openNetwork {
		for _, o := range []string{"WithEgressAllow", "WithIngressFrom"} {
			if c.set[o] {
				return bad("WithOpenNetwork drops the NetworkPolicy that %s adds to: keep one", o)
			}
		}
	}
	if c.mode == ModeAPI && c.set["WithIngressFrom"] {
		return bad("WithIngressFrom opens the in-pod server's port, a ModeHTTP setting; ModeAPI accepts no connection at all: drop it or use WithMode(ModeHTTP)")
	}
	for k, v := range c.labels {
		if ownLabel(k) {
			return bad("label %s is podsandbox's own: choose another key", k)
		}
		errs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...)
		if len(errs) > 0 {
			return bad("label %s=%s: %s", k, v, errs[0])
		}
	}
	for k, v := range c.nodeSelector {
		errs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...)
		if len(errs) > 0 {
			return bad("node selector %s=%s: %s", k, v, errs[0])
		}
	}
	for k := range c.env {
		if !envName.MatchString(k) {
			return bad("env name %q", k)
		}
	}
	if c.podTemplate != nil {
		return c.validateTemplate()
	}
	return nil
}

// validateTemplate applies WithPodTemplate's rule (see there) to the options given with it.
func (c *config) validateTemplate() error {
	t := c.podTemplate
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidArgument}, a...)...)
	}
	if t.Namespace != "" && t.Namespace != c.namespace {
		return bad("the pod template's namespace %q differs from WithNamespace(%q): set one", t.Namespace, c.namespace)
	}
	var ctr *corev1.Container
	if len(t.Spec.Containers) > 0 {
		ctr = &t.Spec.Containers[0]
	}
	conflict := func(opt, field, tv, ov string) error {
		return bad("%s(%s) contradicts the pod template's %s %s: set it in one place", opt, ov, field, tv)
	}
	for k, v := range c.labels {
		if tv, ok := t.Labels[k]; ok && tv != v {
			return conflict("WithLabels", "label "+k, tv, v)
		}
	}
	for k, v := range c.nodeSelector {
		if tv, ok := t.Spec.NodeSelector[k]; ok && tv != v {
			return conflict("WithNodeSelector", "nodeSelector "+k, tv, v)
		}
	}
	if ctr != nil {
		for _, e := range ctr.Env {
			if v, ok := c.env[e.Name]; ok && (e.ValueFrom != nil || e.Value != v) {
				return conflict("WithEnv", "env "+e.Name, e.Value, v)
			}
		}
	}
	if c.set["WithServiceAccount"] && t.Spec.ServiceAccountName != "" && t.Spec.ServiceAccountName != c.serviceAccount {
		return conflict("WithServiceAccount", "serviceAccountName", t.Spec.ServiceAccountName, c.serviceAccount)
	}
	if c.set["WithRuntimeClass"] && t.Spec.RuntimeClassName != nil && *t.Spec.RuntimeClassName != *c.runtimeClass {
		return conflict("WithRuntimeClass", "runtimeClassName", *t.Spec.RuntimeClassName, *c.runtimeClass)
	}
	if c.set["WithActiveDeadline"] && t.Spec.ActiveDeadlineSeconds != nil && *t.Spec.ActiveDeadlineSeconds != *c.activeDeadline {
		return conflict("WithActiveDeadline", "activeDeadlineSeconds", fmt.Sprint(*t.Spec.ActiveDeadlineSeconds), fmt.Sprint(*c.activeDeadline))
	}
	if ctr == nil {
		return nil
	}
	if c.set["WithImagePullPolicy"] && ctr.ImagePullPolicy != "" && ctr.ImagePullPolicy != c.pullPolicy {
		return conflict("WithImagePullPolicy", "imagePullPolicy", string(ctr.ImagePullPolicy), string(c.pullPolicy))
	}
	if c.set["WithWorkDir"] && ctr.WorkingDir != "" && ctr.WorkingDir != c.workDir {
		return conflict("WithWorkDir", "workingDir", ctr.WorkingDir, c.workDir)
	}
	if c.set["WithResources"] && (len(ctr.Resources.Requests) > 0 || len(ctr.Resources.Limits) > 0) &&
		!resourcesEqual(ctr.Resources, c.resources) {
		return conflict("WithResources", "resources", resourcesString(ctr.Resources), resourcesString(c.resources))
	}
	for _, e := range ctr.Env {
		if e.Name == wire.EnvToken && c.mode == ModeAPI {
			return bad("the pod template sets %s, a ModeHTTP setting: drop it or use WithMode(ModeHTTP)", wire.EnvToken)
		}
	}
	return nil
}

func resourcesEqual(a, b corev1.ResourceRequirements) bool {
	eq := func(x, y corev1.ResourceList) bool {
		if len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if w, ok := y[k]; !ok || v.Cmp(w) != 0 {
				return false
			}
		}
		return true
	}
	return eq(a.Requests, b.Requests) && eq(a.Limits, b.Limits)
}

func resourcesString(r corev1.ResourceRequirements) string {
	var parts []string
	for _, l := range []struct {
		name string
		list corev1.ResourceList
	}{{"requests", r.Requests}, {"limits", r.Limits}} {
		for _, k := range slices.Sorted(maps.Keys(l.list)) {
			q := l.list[k]
			parts = append(parts, l.name+"."+string(k)+"="+q.String())
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}
