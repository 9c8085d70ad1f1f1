// Package cli holds what the example programs share: the -kubeconfig, -namespace and
// -pull-policy flags, finding the cluster and making the one podsandbox.Client of an example
// (checking that the cluster answers), a readable progress logger, and printing a failure as one
// line with a hint instead of a stack trace.
package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/podsandbox/podsandbox"
)

// Local images of `make cluster-up` (internal/imagebuild builds them; they are side-loaded into
// the node, never pulled).
const (
	ImagePython = "podsandbox.local/python:3-slim"
	ImageServer = "podsandbox.local/sandbox-server:dev"
)

// Flags are the flags every example takes.
type Flags struct {
	Kubeconfig string
	Namespace  string
	PullPolicy string
	// StartupTimeout bounds each sandbox's Start.
	StartupTimeout time.Duration
	Verbose        bool
}

// Register adds -kubeconfig, -namespace, -pull-policy and -v to fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Kubeconfig, "kubeconfig", DefaultKubeconfig(),
		"kubeconfig file (default: $KUBECONFIG, else the checkout's .cluster/kubeconfig written by `make cluster-up`)")
	fs.StringVar(&f.Namespace, "namespace", "default", "namespace of the sandbox pods")
	fs.StringVar(&f.PullPolicy, "pull-policy", string(corev1.PullNever),
		"image pull policy: Never suits the local cluster, whose images are side-loaded; use IfNotPresent on clusters that pull from a registry")
	fs.DurationVar(&f.StartupTimeout, "startup-timeout", 2*time.Minute,
		"how long a sandbox may take to start; an Unschedulable pod (a busy cluster) is waited for as long")
	fs.BoolVar(&f.Verbose, "v", false, "also print the library's debug logs")
}

// Cluster is where the examples make their sandboxes.
type Cluster struct {
	// REST is the client configuration.
	REST *rest.Config
	// Kubeconfig is the file REST came from ("" for client-go's defaults); for messages.
	Kubeconfig string
	Namespace  string
	PullPolicy corev1.PullPolicy
	// StartupTimeout bounds each sandbox's Start (0: the library's default, 60 s).
	StartupTimeout time.Duration
}

// Cluster loads the client configuration the flags name.
func (f *Flags) Cluster() (Cluster, error) {
	switch p := corev1.PullPolicy(f.PullPolicy); p {
	case corev1.PullNever, corev1.PullIfNotPresent, corev1.PullAlways:
	default:
		return Cluster{}, fmt.Errorf("-pull-policy %q: want Never, IfNotPresent or Always", f.PullPolicy)
	}
	var cfg *rest.Config
	var err error
	if f.Kubeconfig != "" {
		if _, serr := os.Stat(f.Kubeconfig); serr != nil {
			return Cluster{}, fmt.Errorf("kubeconfig %s: %w", f.Kubeconfig, errors.Unwrap(serr))
		}
		outside := false
		cfg, err = podsandbox.LoadConfig(f.Kubeconfig, &outside)
	} else {
		cfg, err = podsandbox.LoadConfig("", nil)
	}
	if err != nil {
		return Cluster{}, fmt.Errorf("no usable kubeconfig (KUBECONFIG is not set and no .cluster/kubeconfig was found above %s): %w", wd(), err)
	}
	return Cluster{REST: cfg, Kubeconfig: f.Kubeconfig, Namespace: f.Namespace,
		PullPolicy: corev1.PullPolicy(f.PullPolicy), StartupTimeout: f.StartupTimeout}, nil
}

func wd() string {
	d, _ := os.Getwd()
	return d
}

// Connect makes the example's one podsandbox.Client for c, logging to log, and checks that the
// cluster answers and has a Ready node, so that a stopped cluster fails with a message naming what
// to do before any pod is made. Every sandbox, factory and reaper of the example is made from the
// Client, so they share its connection and its one pod watch per namespace; the caller closes it
// at the end, after stopping them. opts are added to the Client's (telemetry providers, say).
func (c Cluster) Connect(ctx context.Context, log *slog.Logger, opts ...podsandbox.ClientOption) (*podsandbox.Client, error) {
	opts = slices.Clip(opts)
	if log != nil {
		opts = append(opts, podsandbox.WithClientLogger(log))
	}
	client, err := podsandbox.NewClient(c.REST, opts...)
	if err != nil {
		return nil, err
	}
	if err := c.check(ctx, client.Clientset()); err != nil {
		return nil, errors.Join(err, Close(ctx, client))
	}
	return client, nil
}

// Close closes client, waiting for its pod watches, also when ctx has ended (Ctrl-C), with its own
// timeout.
func Close(ctx context.Context, client *podsandbox.Client) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return client.Close(ctx)
}

// Options returns the sandbox options for c: namespace, pull policy, startup timeout, and the
// logger. (The cluster itself is the Client's: see Connect.) A pod the scheduler cannot place yet
// (Unschedulable: the cluster is full) is waited for until the startup timeout instead of the
// library's default 15 s grace, since on a small shared cluster room usually comes back.
func (c Cluster) Options(log *slog.Logger) []podsandbox.Option {
	opts := []podsandbox.Option{
		podsandbox.WithNamespace(c.Namespace),
		podsandbox.WithImagePullPolicy(c.PullPolicy),
	}
	if log != nil {
		opts = append(opts, podsandbox.WithLogger(log))
	}
	if c.StartupTimeout > 0 {
		opts = append(opts, podsandbox.WithStartupTimeout(c.StartupTimeout), podsandbox.WithUnschedulableGrace(c.StartupTimeout))
	}
	return opts
}

// check fails with a message naming what to do unless the API server answers and a node is
// Ready.
func (c Cluster) check(ctx context.Context, cs kubernetes.Interface) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	from := "client-go's default kubeconfig"
	if c.Kubeconfig != "" {
		from = "kubeconfig " + c.Kubeconfig
	}
	if _, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		return fmt.Errorf("the cluster at %s (%s) does not answer: %s", c.REST.Host, from, firstLine(err.Error()))
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing the nodes of %s: %w", c.REST.Host, err)
	}
	for _, n := range nodes.Items {
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return nil
			}
		}
	}
	return fmt.Errorf("the cluster at %s has no Ready node", c.REST.Host)
}

// DefaultKubeconfig is $KUBECONFIG when set, else the .cluster/kubeconfig of the checkout
// (a directory with go.mod and .cluster/kubeconfig above the working directory), else "" (then
// client-go's defaults apply: in-cluster, ~/.kube/config).
func DefaultKubeconfig() string {
	if p := os.Getenv("KUBECONFIG"); p != "" {
		return p
	}
	return findCheckoutKubeconfig(wd())
}

func findCheckoutKubeconfig(dir string) string {
	for d := dir; d != ""; {
		p := filepath.Join(d, ".cluster", "kubeconfig")
		if isFile(filepath.Join(d, "go.mod")) && isFile(p) {
			return p
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	return ""
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// Main runs fn with a context that ends on SIGINT or SIGTERM (so the examples still delete their
// pods when interrupted) and turns an error into one line on stderr, with a hint, and exit code 1.
func Main(name string, fn func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := fn(ctx)
	stop()
	if err == nil {
		return
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "%s: error: %s\n", name, oneLine(err.Error()))
	if h := Hint(err); h != "" {
		fmt.Fprintf(os.Stderr, "%s: %s\n", name, h)
	}
	os.Exit(1)
}

// Hint suggests what to do about err, or returns "".
func Hint(err error) string {
	msg := err.Error()
	var se *podsandbox.StartupError
	switch {
	case errors.As(err, &se) && (se.Reason == "ErrImageNeverPull" || strings.Contains(se.Reason, "ImagePull") || strings.Contains(se.Reason, "ErrImage")):
		return "the image is not on the node: `make cluster-up` imports the local images (`make kind-up` for kind); on another cluster use an image it can pull and -pull-policy IfNotPresent"
	case errors.Is(err, podsandbox.ErrStartup):
		return "the sandbox pod did not start; run with -v for the library's logs"
	case strings.Contains(msg, "does not answer"), strings.Contains(msg, "no usable kubeconfig"), strings.Contains(msg, "kubeconfig "):
		return "start the local cluster with `make cluster-up` (as root), or point -kubeconfig or KUBECONFIG at a running cluster"
	case strings.Contains(msg, "forbidden"):
		return "the kubeconfig's user lacks a permission; deploy/rbac.yaml lists what podsandbox needs"
	}
	return ""
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// SyncWriter serialises writes to W: the examples' output and the progress logger (which the
// warm pool calls from its own goroutines) share one writer.
type SyncWriter struct {
	mu sync.Mutex
	W  io.Writer
}

// Write writes p to W under the lock.
func (s *SyncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.W.Write(p)
}

// Elapsed formats d as seconds with millisecond precision ("1.234s").
func Elapsed(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }

// Buffer is a bytes.Buffer safe for concurrent use: tests collect an example's output in it while
// the warm pool's goroutines log into it too.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
