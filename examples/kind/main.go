// Command kind is the seed's kind walk-through as one Go program, using kind's Go API
// (sigs.k8s.io/kind/pkg/cluster) instead of the kind and kubectl command lines:
//
//  1. find a container engine (Docker, Podman or nerdctl);
//  2. build the sandbox-server image archive (no Docker build: internal/imagebuild);
//  3. create a kind cluster, or reuse it, and load the image archive into its nodes
//     (what `kind create cluster` and `kind load image-archive` do);
//  4. apply deploy/rbac.yaml (the podsandbox ServiceAccount, Role and RoleBinding), as
//     `kubectl apply -f deploy/rbac.yaml` does;
//  5. run the quickstart flow as that ServiceAccount, which shows the Role is enough: API mode
//     with python:3.12-slim (pulled by the node), HTTP mode with the loaded server image.
//
// The cluster keeps running; -delete deletes it.
//
// kind runs each Kubernetes node as a container, so this program needs Docker or Podman. Without
// one it exits 1 with a one-line message. (This project's development machines have no Docker:
// there, `make cluster-up` and the other examples are the way.)
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/cluster"
	kindcmd "sigs.k8s.io/kind/pkg/cmd"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/examples/internal/cli"
	"github.com/podsandbox/podsandbox/internal/imagebuild"
	"github.com/podsandbox/podsandbox/internal/kindcluster"
)

// Config is what run needs.
type Config struct {
	Name        string // kind cluster name
	NodeImage   string // kind node image ("" = kind's default)
	Kubeconfig  string // where the cluster's kubeconfig is written
	Namespace   string
	PythonImage string // pulled by the node
	Root        string // the checkout (for deploy/rbac.yaml and the image build)
	Delete      bool
	Verbose     bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// realMain parses args, runs, and turns an error into one line on stderr and exit code 1.
func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kind", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	fs.StringVar(&cfg.Name, "name", kindcluster.DefaultName, "kind cluster name")
	fs.StringVar(&cfg.NodeImage, "node-image", os.Getenv("KIND_NODE_IMAGE"), "kind node image (default: kind's own; env KIND_NODE_IMAGE)")
	fs.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "where to write the cluster's kubeconfig (default: <checkout>/.cluster/kind.kubeconfig; never the local cluster's)")
	fs.StringVar(&cfg.Namespace, "namespace", "default", "namespace for the RBAC objects and the sandboxes")
	fs.StringVar(&cfg.PythonImage, "python-image", "python:3.12-slim", "API-mode image; the kind node pulls it")
	fs.BoolVar(&cfg.Delete, "delete", false, "delete the kind cluster and exit")
	fs.BoolVar(&cfg.Verbose, "v", false, "also print the library's debug logs")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	err := run(ctx, cfg, stdout)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "kind example: %s\n", strings.Join(strings.Fields(err.Error()), " "))
	return 1
}

// errNoEngine is the whole message when there is nothing kind can run nodes with.
var errNoEngine = errors.New("kind runs Kubernetes nodes as containers and needs Docker or Podman, and none works here; on this machine use the local cluster instead: make cluster-up && go run ./examples/quickstart")

func run(ctx context.Context, cfg Config, out io.Writer) error {
	// 1. A container engine, before anything slow.
	engine, err := kindcluster.DetectEngine()
	if err != nil {
		if errors.Is(err, kindcluster.ErrNoEngine) {
			return fmt.Errorf("%w (%s)", errNoEngine, reasons(err))
		}
		return err
	}
	step := stepper(out)
	step("container engine: %s (%s)", engine.Name, engine.Path)
	if cfg.Root == "" {
		if cfg.Root, err = checkoutRoot(); err != nil {
			return err
		}
	}
	if cfg.Kubeconfig == "" {
		cfg.Kubeconfig = filepath.Join(cfg.Root, ".cluster", "kind.kubeconfig")
	}
	if cfg.Delete {
		return deleteCluster(engine, cfg.Name, cfg.Kubeconfig, out)
	}

	// 2. The server image, as a docker-archive tarball.
	b := imagebuild.Builder{Dir: filepath.Join(cacheDir(), "images"), Root: cfg.Root, Logf: func(f string, a ...any) { step(f, a...) }}
	images, err := b.Build(ctx, "sandbox-server")
	if err != nil {
		return fmt.Errorf("building the server image: %w", err)
	}

	// 3. The cluster, with the image loaded into every node (kind load image-archive).
	o := kindcluster.Options{Name: cfg.Name, NodeImage: cfg.NodeImage, Kubeconfig: cfg.Kubeconfig}
	for _, img := range images {
		o.Images = append(o.Images, img.Path)
	}
	if err := kindcluster.Up(engine, o, func(f string, a ...any) { step(f, a...) }); err != nil {
		return err
	}
	step("kubeconfig: %s", cfg.Kubeconfig)
	admin, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		return fmt.Errorf("loading %s: %w", cfg.Kubeconfig, err)
	}

	// 4. RBAC: the least privilege podsandbox needs in the namespace.
	if err := applyRBAC(ctx, admin, filepath.Join(cfg.Root, "deploy", "rbac.yaml"), cfg.Namespace, step); err != nil {
		return err
	}

	// 5. The quickstart flow, as the podsandbox ServiceAccount.
	asSA := rest.CopyConfig(admin)
	asSA.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + cfg.Namespace + ":podsandbox",
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + cfg.Namespace, "system:authenticated"},
	}
	step("running the quickstart flow as %s", asSA.Impersonate.UserName)
	if err := quickstart(ctx, asSA, cfg, out); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nThe kind cluster %q keeps running (kubeconfig %s); delete it with: go run ./examples/kind -delete\n", cfg.Name, cfg.Kubeconfig)
	return nil
}

// quickstart is the quickstart example's flow: python3 in API mode, then HTTP mode. Both sandboxes
// are made from one podsandbox.Client for rc, closed at the end.
func quickstart(ctx context.Context, rc *rest.Config, cfg Config, out io.Writer) (err error) {
	log := cli.NewLogger(out, cfg.Verbose)
	client, err := podsandbox.NewClient(rc, podsandbox.WithClientLogger(log))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, cli.Close(ctx, client)) }()
	base := []podsandbox.Option{
		podsandbox.WithNamespace(cfg.Namespace),
		// IfNotPresent: the server image is loaded into the node, the python image is pulled once.
		podsandbox.WithImagePullPolicy(corev1.PullIfNotPresent),
		podsandbox.WithStartupTimeout(5 * time.Minute), // a first pull of the python image
	}
	for _, c := range []struct {
		image   string
		mode    podsandbox.Mode
		command string
		want    string
	}{
		{cfg.PythonImage, podsandbox.ModeAPI, `python3 -c 'print(1+1)'`, "2"},
		{imagebuild.SandboxServer, podsandbox.ModeHTTP, `echo "hello from $(hostname)"`, "hello from "},
	} {
		fmt.Fprintf(out, "\n%s mode: %s\n", strings.ToUpper(string(c.mode)), c.image)
		sb, err := client.NewSandbox(c.image, append(base, podsandbox.WithMode(c.mode))...)
		if err != nil {
			return err
		}
		err = func() error {
			if err := sb.Start(ctx); err != nil {
				return err
			}
			fmt.Fprintf(out, "  $ %s\n", c.command)
			res, err := sb.Execute(ctx, c.command)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "    %s    (exit %d)\n", strings.TrimSpace(res.Output), res.ExitCode)
			if !strings.HasPrefix(strings.TrimSpace(res.Stdout), c.want) {
				return fmt.Errorf("%s printed %q", c.command, res.Stdout)
			}
			return nil
		}()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err = errors.Join(err, sb.Stop(sctx))
		cancel()
		if err != nil {
			return fmt.Errorf("%s mode: %w", c.mode, err)
		}
		fmt.Fprintf(out, "  stopped: pod %s deleted\n", sb.PodName())
	}
	return nil
}

// applyRBAC creates or updates every object of the YAML file in namespace.
func applyRBAC(ctx context.Context, rc *rest.Config, path, namespace string, step func(string, ...any)) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	objs, err := decodeAll(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, obj := range objs {
		var kind, name string
		var err error
		switch o := obj.(type) {
		case *corev1.ServiceAccount:
			kind, name = "ServiceAccount", o.Name
			_, err = cs.CoreV1().ServiceAccounts(namespace).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.Role:
			kind, name = "Role", o.Name
			_, err = cs.RbacV1().Roles(namespace).Create(ctx, o, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				err = update(ctx, func(ctx context.Context) error {
					cur, err := cs.RbacV1().Roles(namespace).Get(ctx, o.Name, metav1.GetOptions{})
					if err != nil {
						return err
					}
					cur.Rules = o.Rules
					_, err = cs.RbacV1().Roles(namespace).Update(ctx, cur, metav1.UpdateOptions{})
					return err
				})
			}
		case *rbacv1.RoleBinding:
			kind, name = "RoleBinding", o.Name
			for i := range o.Subjects {
				if o.Subjects[i].Kind == rbacv1.ServiceAccountKind && o.Subjects[i].Namespace == "" {
					o.Subjects[i].Namespace = namespace
				}
			}
			_, err = cs.RbacV1().RoleBindings(namespace).Create(ctx, o, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				err = update(ctx, func(ctx context.Context) error {
					cur, err := cs.RbacV1().RoleBindings(namespace).Get(ctx, o.Name, metav1.GetOptions{})
					if err != nil {
						return err
					}
					cur.Subjects = o.Subjects // the roleRef cannot change
					_, err = cs.RbacV1().RoleBindings(namespace).Update(ctx, cur, metav1.UpdateOptions{})
					return err
				})
			}
		default:
			return fmt.Errorf("%s: unexpected object %T", path, obj)
		}
		switch {
		case apierrors.IsAlreadyExists(err):
			step("rbac: %s/%s exists", kind, name)
		case err != nil:
			return fmt.Errorf("applying %s/%s: %w", kind, name, err)
		default:
			step("rbac: %s/%s applied in namespace %s", kind, name, namespace)
		}
	}
	return nil
}

func update(ctx context.Context, fn func(context.Context) error) error {
	var err error
	for range 5 {
		if err = fn(ctx); !apierrors.IsConflict(err) {
			return err
		}
	}
	return err
}

// decodeAll decodes a multi-document YAML file into typed objects.
func decodeAll(data []byte) ([]runtime.Object, error) {
	var objs []runtime.Object
	var doc bytes.Buffer
	flush := func() error {
		if strings.TrimSpace(stripComments(doc.String())) != "" {
			obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc.Bytes(), nil, nil)
			if err != nil {
				return err
			}
			objs = append(objs, obj)
		}
		doc.Reset()
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if strings.TrimRight(sc.Text(), " ") == "---" {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		doc.WriteString(sc.Text() + "\n")
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return objs, flush()
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// deleteCluster deletes the kind cluster (kind delete cluster) and its kubeconfig file.
func deleteCluster(e kindcluster.Engine, name, kubeconfig string, out io.Writer) error {
	opt := cluster.ProviderWithDocker()
	switch e.Name {
	case "podman":
		opt = cluster.ProviderWithPodman()
	case "nerdctl":
		opt = cluster.ProviderWithNerdctl(e.Path)
	}
	p := cluster.NewProvider(opt, cluster.ProviderWithLogger(kindcmd.NewLogger()))
	if err := p.Delete(name, kubeconfig); err != nil {
		return fmt.Errorf("deleting kind cluster %q: %w", name, err)
	}
	if err := os.Remove(kubeconfig); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	fmt.Fprintf(out, "kind cluster %q deleted\n", name)
	return nil
}

// reasons condenses DetectEngine's error to what was tried.
func reasons(err error) string {
	lines := strings.Split(err.Error(), "\n")
	if len(lines) == 1 {
		_, r, _ := strings.Cut(lines[0], "make cluster-up: ")
		return strings.TrimSpace(r)
	}
	return strings.Join(lines[1:], "; ")
}

func stepper(out io.Writer) func(string, ...any) {
	t0 := time.Now()
	return func(f string, a ...any) {
		fmt.Fprintf(out, "[kind %7s] %s\n", cli.Elapsed(time.Since(t0)), fmt.Sprintf(f, a...))
	}
}

// checkoutRoot is the podsandbox checkout above the working directory (for deploy/rbac.yaml and
// the server's source).
func checkoutRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "deploy", "rbac.yaml")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				return d, nil
			}
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("run this from the podsandbox checkout: it needs deploy/rbac.yaml and the server's source")
		}
		d = parent
	}
}

// cacheDir is where the image tarballs are kept, as hack/cluster/lib.sh and hack/kind-up.
func cacheDir() string {
	if d := os.Getenv("PODSANDBOX_CACHE"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "podsandbox")
}
