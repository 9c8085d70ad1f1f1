package podsandbox

import (
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
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

// Option configures a KubernetesPodSandbox.
type Option func(*config) error

type config struct {
	image            string
	namespace        string
	sandboxID        string
	mode             Mode
	port             int
	execToken        string
	podTemplate      *corev1.Pod
	kubeconfigPath   string
	inCluster        *bool
	startupTimeout   time.Duration
	idleTimeout      time.Duration
	labels           map[string]string
	env              map[string]string
	deleteOnStop     bool
	serviceAccount   string
	restConfig       *rest.Config
	clientset        kubernetes.Interface
	logger           *slog.Logger
	reach            Reach
	workDir          string
	resources        corev1.ResourceRequirements
	runtimeClass     *string
	pullPolicy       corev1.PullPolicy
	terminationGrace int64
	activeDeadline   *int64
	unschedulable    time.Duration
	maxFileBytes     int64
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
	}
}

// WithNamespace sets the namespace of the pod (default "default").
func WithNamespace(ns string) Option { return func(c *config) error { c.namespace = ns; return nil } }

// WithSandboxID sets the sandbox's identity; the pod name is derived from it (see PodName). By
// default a random UUID (32 hex characters, as upstream) is used.
func WithSandboxID(id string) Option { return func(c *config) error { c.sandboxID = id; return nil } }

// WithSessionID is upstream's alias of WithSandboxID; WithSandboxID wins when both are given.
func WithSessionID(id string) Option {
	return func(c *config) error {
		if c.sandboxID == "" {
			c.sandboxID = id
		}
		return nil
	}
}

// WithMode selects the transport (default ModeHTTP).
func WithMode(m Mode) Option {
	return func(c *config) error {
		if m != ModeHTTP && m != ModeAPI {
			return fmt.Errorf("%w: mode %q: use ModeHTTP or ModeAPI", ErrInvalidArgument, m)
		}
		c.mode = m
		return nil
	}
}

// WithPort sets the in-pod server's port (HTTP mode, default 8080).
func WithPort(port int) Option {
	return func(c *config) error {
		if port < 1 || port > 65535 {
			return fmt.Errorf("%w: port %d is not in 1-65535", ErrInvalidArgument, port)
		}
		c.port = port
		return nil
	}
}

// WithExecToken sets the HTTP-mode token instead of a generated one (32 random bytes,
// URL-safe base64, as upstream).
func WithExecToken(token string) Option {
	return func(c *config) error { c.execToken = token; return nil }
}

// WithPodTemplate uses pod as the pod body. As upstream, only the name, namespace, labels, the
// first container's image and name, env, and (HTTP mode) the port and readiness probe are filled
// in; nothing of the hardened default is added. The template is copied.
func WithPodTemplate(pod *corev1.Pod) Option {
	return func(c *config) error { c.podTemplate = pod.DeepCopy(); return nil }
}

// WithKubeconfig loads the client configuration from this kubeconfig file.
func WithKubeconfig(path string) Option {
	return func(c *config) error { c.kubeconfigPath = path; return nil }
}

// WithInCluster forces (true) or forbids (false) the in-cluster configuration. By default it is
// used when no kubeconfig path is given and the process runs in a pod.
func WithInCluster(in bool) Option { return func(c *config) error { c.inCluster = &in; return nil } }

// WithStartupTimeout bounds Start (default 60 s), image pull included.
func WithStartupTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: startup timeout must be positive", ErrInvalidArgument)
		}
		c.startupTimeout = d
		return nil
	}
}

// WithIdleTimeout sets how long the sandbox may stay unused before a SessionManager releases it
// (default 1 h).
func WithIdleTimeout(d time.Duration) Option {
	return func(c *config) error { c.idleTimeout = d; return nil }
}

// WithLabels adds pod labels.
func WithLabels(l map[string]string) Option {
	return func(c *config) error { c.labels = l; return nil }
}

// WithEnv adds container environment variables.
func WithEnv(env map[string]string) Option { return func(c *config) error { c.env = env; return nil } }

// WithDeleteOnStop controls whether Stop deletes the pod (default true; false keeps it for a
// post-mortem).
func WithDeleteOnStop(del bool) Option {
	return func(c *config) error { c.deleteOnStop = del; return nil }
}

// WithServiceAccount sets spec.serviceAccountName (default "default"; its token is never mounted).
func WithServiceAccount(name string) Option {
	return func(c *config) error { c.serviceAccount = name; return nil }
}

// WithRESTConfig uses cfg instead of loading a kubeconfig. It is copied; a zero QPS is raised to
// 50 (client-go's default of 5 makes bursts slow).
func WithRESTConfig(cfg *rest.Config) Option {
	return func(c *config) error { c.restConfig = rest.CopyConfig(cfg); return nil }
}

// WithClientset uses cs for API calls (WithRESTConfig is still needed for pods/exec and
// port-forward, which need a *rest.Config).
func WithClientset(cs kubernetes.Interface) Option {
	return func(c *config) error { c.clientset = cs; return nil }
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) error { c.logger = l; return nil } }

// WithReach sets how the HTTP transport reaches the pod (default ReachAuto).
func WithReach(r Reach) Option {
	return func(c *config) error {
		switch r {
		case ReachAuto, ReachPodIP, ReachProxy, ReachPortForward:
			c.reach = r
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
		return nil
	}
}

// WithResources replaces the default requests and limits (256Mi/100m requests, 768Mi/1 CPU limits).
func WithResources(r corev1.ResourceRequirements) Option {
	return func(c *config) error { c.resources = r; return nil }
}

// WithRuntimeClass sets spec.runtimeClassName (for example gVisor or Kata).
func WithRuntimeClass(name string) Option {
	return func(c *config) error { c.runtimeClass = &name; return nil }
}

// WithImagePullPolicy sets the container's pull policy (default IfNotPresent).
func WithImagePullPolicy(p corev1.PullPolicy) Option {
	return func(c *config) error { c.pullPolicy = p; return nil }
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
		return nil
	}
}

// WithUnschedulableGrace sets how long Start tolerates an Unschedulable pod (default 15 s) before
// failing; the cluster may still make room.
func WithUnschedulableGrace(d time.Duration) Option {
	return func(c *config) error { c.unschedulable = d; return nil }
}

// WithMaxFileBytes sets the largest file ReadBytes/Read/Edit accept and Write sends (default
// 64 MiB). Larger files are refused with *FileTooLargeError, never cut.
func WithMaxFileBytes(n int64) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("%w: max file bytes must be positive", ErrInvalidArgument)
		}
		c.maxFileBytes = n
		return nil
	}
}
