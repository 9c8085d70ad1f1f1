// Package e2e is the harness of the end-to-end tests (files with //go:build e2e), which run against
// a real cluster: the local one from `make cluster-up`, or any cluster KUBECONFIG points at.
//
// A test package calls Main from TestMain; it finds the cluster, fails the whole run (it never
// skips) when there is none or it does not answer, creates one namespace for the run and deletes it
// at the end:
//
//	func TestMain(m *testing.M) { e2e.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		env := e2e.Env(t) // env.Config, env.Client, env.Namespace
//		...
//	}
//
// The cluster is found through KUBECONFIG when it is set, else through .cluster/kubeconfig in the
// checkout (the directory with go.mod and hack/cluster above the working directory), which
// `make cluster-up` writes.
//
// Tests must only talk to loopback (the API server, port-forward listeners) or to pod IPs of this
// machine: pods have no route off it, and that must stay so.
package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/podsandbox/podsandbox"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Images of the local cluster (built by `make images`, side-loaded: use imagePullPolicy Never or
// IfNotPresent). internal/imagebuild builds them under the same names.
const (
	// ImagePause is the pod sandbox image.
	ImagePause = "podsandbox.local/pause:1"
	// ImageBusybox has busybox applets in /bin, /tmp 1777 and users root, sandbox (1000:1000,
	// home /workspace) and nobody.
	ImageBusybox = "podsandbox.local/busybox:1"
	// ImagePython is a Debian slim system with python3 and GNU coreutils (the stand-in for
	// python:3.12-slim), with the user sandbox (1000).
	ImagePython = "podsandbox.local/python:3-slim"
	// ImageNoShell holds one static binary that sleeps until SIGTERM, and no /bin/sh.
	ImageNoShell = "podsandbox.local/noshell:1"
	// ImageServer is ImageBusybox with dash as /bin/sh and GNU grep (what the upstream Python
	// client's shell fallbacks need), plus the in-pod server (cmd/sandbox-server) as entrypoint, user
	// 1000, working directory /workspace.
	ImageServer = "podsandbox.local/sandbox-server:dev"
)

const (
	// NamespacePrefix starts the name of every namespace the harness creates for a run.
	NamespacePrefix = "psbx-e2e-"
	// LabelE2E (value "true") marks every namespace the harness creates.
	LabelE2E = "podsandbox.dev/e2e"
	// LabelRun holds the ID of the test binary run that created the namespace.
	LabelRun = "podsandbox.dev/e2e-run"

	// QPS and Burst of the harness's client: the default 5/10 makes request bursts look slow.
	QPS   = 200
	Burst = 400

	// staleAfter is the age after which a labelled namespace of an earlier run that did not clean
	// up (killed) is deleted by the next run.
	staleAfter = 2 * time.Hour
	// KeepEnv set to 1 keeps the namespaces for inspection after the run.
	KeepEnv = "E2E_KEEP_NAMESPACE"
)

// Cluster is the cluster under test.
type Cluster struct {
	// Config has QPS and Burst raised (QPS, Burst).
	Config *rest.Config
	Client kubernetes.Interface
	// Namespace is this test binary run's own namespace (NamespacePrefix...), deleted at the end.
	Namespace string
	// Kubeconfig is the file the cluster was found through.
	Kubeconfig string
	// RunID identifies this run (label LabelRun on its namespaces).
	RunID string
}

var current *Cluster

// Main sets the cluster up (see the package doc), runs the tests and tears down. Call it from
// TestMain. It exits 1 with a message naming `make cluster-up` when there is no usable cluster.
func Main(m *testing.M) {
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	c, err := setup(ctx)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		os.Exit(1)
	}
	current = c
	fmt.Fprintf(os.Stderr, "e2e: cluster %s (kubeconfig %s), namespace %s\n", c.Config.Host, c.Kubeconfig, c.Namespace)
	code := m.Run()
	if os.Getenv(KeepEnv) == "1" {
		fmt.Fprintf(os.Stderr, "e2e: %s=1: keeping namespace %s\n", KeepEnv, c.Namespace)
	} else if err := c.deleteNamespace(c.Namespace); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: deleting namespace %s: %v\n", c.Namespace, err)
	}
	os.Exit(code)
}

// Env returns the cluster under test. It fails the test when Main did not set it up.
func Env(t testing.TB) *Cluster {
	t.Helper()
	if current == nil {
		t.Fatal("e2e: no cluster: call e2e.Main(m) from TestMain in this package")
	}
	return current
}

// CreateNamespace creates an extra namespace named prefix-<random> (labelled like the run's own),
// waits until its default ServiceAccount exists (pods need it), deletes it when the test ends, and
// returns its name.
func CreateNamespace(t testing.TB, prefix string) string {
	t.Helper()
	c := Env(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns, err := c.createNamespace(ctx, strings.TrimSuffix(prefix, "-")+"-")
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	t.Cleanup(func() {
		if os.Getenv(KeepEnv) == "1" {
			t.Logf("e2e: %s=1: keeping namespace %s", KeepEnv, ns)
			return
		}
		if err := c.deleteNamespace(ns); err != nil {
			t.Errorf("e2e: deleting namespace %s: %v", ns, err)
		}
	})
	return ns
}

func setup(ctx context.Context) (*Cluster, error) {
	path, err := kubeconfigPath()
	if err != nil {
		return nil, err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if os.Getenv("KUBECONFIG") == "" {
		rules.ExplicitPath = path
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s: %w%s", path, err, hint)
	}
	cfg.QPS, cfg.Burst = QPS, Burst
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Config: cfg, Client: cs, Kubeconfig: path, RunID: fmt.Sprintf("%d-%d", time.Now().Unix(), os.Getpid())}
	if err := c.check(ctx); err != nil {
		return nil, err
	}
	c.sweep(ctx)
	if c.Namespace, err = c.createNamespace(ctx, NamespacePrefix+packageName()+"-"); err != nil {
		return nil, err
	}
	return c, nil
}

const hint = "\n\tStart the local cluster with `make cluster-up` (or point KUBECONFIG at a running cluster)."

// kubeconfigPath is $KUBECONFIG when set, else <checkout>/.cluster/kubeconfig, which must exist.
func kubeconfigPath() (string, error) {
	if p := os.Getenv("KUBECONFIG"); p != "" {
		return p, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root, err := checkoutRoot(wd)
	if err != nil {
		return "", fmt.Errorf("no cluster: %w%s", err, hint)
	}
	p := filepath.Join(root, ".cluster", "kubeconfig")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("no cluster: %s does not exist and KUBECONFIG is not set%s", p, hint)
	}
	return p, nil
}

// checkoutRoot walks up from dir to the checkout: the first directory with go.mod and hack/cluster
// (so that nested modules such as adapters/ find it too), else the nearest one with go.mod.
func checkoutRoot(dir string) (string, error) {
	nearest := ""
	for d := dir; ; d = filepath.Dir(d) {
		if exists(filepath.Join(d, "go.mod")) {
			if exists(filepath.Join(d, "hack", "cluster")) {
				return d, nil
			}
			if nearest == "" {
				nearest = d
			}
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	if nearest == "" {
		return "", fmt.Errorf("no go.mod above %s", dir)
	}
	return nearest, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}

// check fails unless the API server is ready and a node is Ready.
func (c *Cluster) check(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx); err != nil {
		return fmt.Errorf("the cluster at %s (kubeconfig %s) does not answer: %w%s", c.Config.Host, c.Kubeconfig, err, hint)
	}
	nodes, err := c.Client.CoreV1().Nodes().List(rctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing nodes of %s: %w", c.Config.Host, err)
	}
	for _, n := range nodes.Items {
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return nil
			}
		}
	}
	return fmt.Errorf("the cluster at %s has no Ready node (%d nodes)%s", c.Config.Host, len(nodes.Items), hint)
}

// sweep deletes labelled namespaces of earlier runs older than staleAfter (runs that were killed);
// younger ones may belong to a run going on in another checkout.
func (c *Cluster) sweep(ctx context.Context) {
	list, err := c.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: LabelE2E + "=true"})
	if err != nil {
		return
	}
	for _, ns := range list.Items {
		if ns.DeletionTimestamp == nil && time.Since(ns.CreationTimestamp.Time) > staleAfter {
			_ = c.deleteNamespace(ns.Name)
		}
	}
}

func (c *Cluster) createNamespace(ctx context.Context, generateName string) (string, error) {
	ns, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: generateName,
		Labels:       map[string]string{LabelE2E: "true", LabelRun: c.RunID},
	}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("creating namespace %s...: %w", generateName, err)
	}
	// The ServiceAccount admission plugin rejects pods until the namespace's default
	// ServiceAccount exists.
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := c.Client.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return "", fmt.Errorf("namespace %s: waiting for its default ServiceAccount: %w", ns.Name, err)
	}
	return ns.Name, nil
}

func (c *Cluster) deleteNamespace(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := c.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

var notDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// packageName is the test binary's name without ".test", as a DNS label fragment.
func packageName() string {
	n := strings.TrimSuffix(filepath.Base(os.Args[0]), ".test")
	n = strings.Trim(notDNS.ReplaceAllString(strings.ToLower(n), "-"), "-")
	if len(n) > 20 {
		n = strings.TrimRight(n[:20], "-")
	}
	if n == "" {
		n = "test"
	}
	return n
}

// LivePods returns the pods of namespace ns that podsandbox manages (its managed-by label), that match selector (a label selector, "" for all)
// and that are not being deleted.
func LivePods(t testing.TB, ns, selector string) []corev1.Pod {
	t.Helper()
	sel := podsandbox.LabelManagedBy + "=" + podsandbox.ManagedByValue
	if selector != "" {
		sel += "," + selector
	}
	l, err := Env(t).Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	var live []corev1.Pod
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	return live
}

const (
	// GVisorClass is the RuntimeClass that runs pods on gVisor in the local cluster.
	GVisorClass = "gvisor"
	// GVisorEnv set to 0 says the cluster was started without gVisor on purpose (make cluster-up
	// GVISOR=0): the gVisor tests then skip and say so. Otherwise they need the RuntimeClass.
	GVisorEnv = "GVISOR"
)

// RequireGVisor fails the test when the cluster has no RuntimeClass GVisorClass, or skips it when
// GVisorEnv=0 says gVisor was left out on purpose.
func RequireGVisor(t testing.TB) {
	t.Helper()
	if os.Getenv(GVisorEnv) == "0" {
		t.Skipf("%s=0: the cluster runs without gVisor", GVisorEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Env(t).Client.NodeV1().RuntimeClasses().Get(ctx, GVisorClass, metav1.GetOptions{}); err != nil {
		t.Fatalf("RuntimeClass %s: %v (make cluster-up installs it; run make cluster-down && make cluster-up, or set %s=0 to skip the gVisor tests)", GVisorClass, err, GVisorEnv)
	}
}

// NetpolEnv set to 0 says the cluster was started without a NetworkPolicy enforcer on purpose
// (make cluster-up NETPOL=0): the enforcement tests then skip and say so.
const NetpolEnv = "NETPOL"

// RequireEnforcer skips the test when NetpolEnv=0 says the cluster enforces no NetworkPolicy.
// Otherwise the test runs, and its own checks fail when nothing enforces the policies.
func RequireEnforcer(t testing.TB) {
	t.Helper()
	if os.Getenv(NetpolEnv) == "0" {
		t.Skipf("%s=0: the cluster runs without a NetworkPolicy enforcer", NetpolEnv)
	}
}

// NodeDrillsEnv set to 0 skips the node drills (they fault the local cluster's own daemons, so
// they need the cluster of make cluster-up on this machine, as root).
const NodeDrillsEnv = "NODE_DRILLS"

// RequireNodeAccess fails the test unless the cluster is the local one of make cluster-up, whose
// daemons hack/cluster/fault.sh can pause and restart; NodeDrillsEnv=0 skips it instead.
func RequireNodeAccess(t testing.TB) {
	t.Helper()
	if os.Getenv(NodeDrillsEnv) == "0" {
		t.Skipf("%s=0: the node drills are off (they need the local cluster's daemons)", NodeDrillsEnv)
	}
	env := Env(t)
	if _, err := os.Stat("/run/podsandbox-cluster/kube-apiserver.pid"); err != nil || env.Config.Host != "https://127.0.0.1:6443" {
		t.Fatalf("the node drills pause and restart the local cluster's daemons, and %s is not the local cluster of make cluster-up (set %s=0 to skip them on other clusters)", env.Config.Host, NodeDrillsEnv)
	}
}
