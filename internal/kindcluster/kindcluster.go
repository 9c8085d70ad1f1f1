// Package kindcluster starts a kind cluster (Kubernetes in Docker or Podman) for the e2e tests, as
// an alternative to the local bare-process cluster on machines that have a container engine, and
// side-loads the local images into its nodes. It uses kind's Go API (sigs.k8s.io/kind/pkg/cluster);
// only hack/kind-up imports it, so kind stays out of the library's import graph.
package kindcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
	kindcmd "sigs.k8s.io/kind/pkg/cmd"
)

// DefaultName is the kind cluster's default name.
const DefaultName = "podsandbox"

// Options of Up.
type Options struct {
	// Name of the kind cluster. Default DefaultName.
	Name string
	// NodeImage is the kind node image. Default: kind's own default for its version.
	NodeImage string
	// Kubeconfig is where the cluster's admin kubeconfig is written (replacing the file). Required.
	Kubeconfig string
	// Images are docker-archive tarballs loaded into every node.
	Images []string
	// Wait bounds the wait for the control plane to be ready. Default 5 minutes.
	Wait time.Duration
}

// Engine is a container engine kind can drive.
type Engine struct {
	// Name is docker, podman or nerdctl.
	Name string
	// Path is the engine's binary.
	Path string
}

// ErrNoEngine means that no usable container engine was found.
var ErrNoEngine = errors.New("kind needs a working container engine (docker, podman or nerdctl); without one, use the local cluster: make cluster-up")

var engines = []string{"docker", "podman", "nerdctl"}

// DetectEngine finds a working container engine: the one KIND_EXPERIMENTAL_PROVIDER names, else
// the first of docker, podman, nerdctl on PATH whose `info` succeeds.
func DetectEngine() (Engine, error) {
	return detectEngine(os.Getenv("KIND_EXPERIMENTAL_PROVIDER"), exec.LookPath, engineInfo)
}

func engineInfo(path string) error {
	cmd := exec.Command(path, "info")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("`%s info` failed: %w: %s", filepath.Base(path), err, lastLine(out))
	}
	return nil
}

// lastLine is where docker and podman put the reason `info` failed.
func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	return strings.TrimSpace(s[strings.LastIndex(s, "\n")+1:])
}

func detectEngine(preferred string, lookPath func(string) (string, error), info func(string) error) (Engine, error) {
	candidates := engines
	if preferred != "" {
		if !slices.Contains(engines, preferred) {
			return Engine{}, fmt.Errorf("KIND_EXPERIMENTAL_PROVIDER=%q: want one of %s", preferred, strings.Join(engines, ", "))
		}
		candidates = []string{preferred}
	}
	var broken []error
	for _, name := range candidates {
		path, err := lookPath(name)
		if err != nil {
			continue
		}
		if err := info(path); err != nil {
			broken = append(broken, fmt.Errorf("%s at %s does not work: %w", name, path, err))
			continue
		}
		return Engine{Name: name, Path: path}, nil
	}
	if len(broken) > 0 {
		return Engine{}, fmt.Errorf("%w\n%w", ErrNoEngine, errors.Join(broken...))
	}
	return Engine{}, fmt.Errorf("%w: none is on PATH", ErrNoEngine)
}

func (e Engine) providerOption() cluster.ProviderOption {
	switch e.Name {
	case "podman":
		return cluster.ProviderWithPodman()
	case "nerdctl":
		return cluster.ProviderWithNerdctl(e.Path)
	default:
		return cluster.ProviderWithDocker()
	}
}

// withDefaults fills the defaults in and checks o.
func (o Options) withDefaults() (Options, error) {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Wait == 0 {
		o.Wait = 5 * time.Minute
	}
	if o.Kubeconfig == "" {
		return o, errors.New("kindcluster: Options.Kubeconfig is required")
	}
	for _, img := range o.Images {
		if _, err := os.Stat(img); err != nil {
			return o, fmt.Errorf("kindcluster: image archive: %w", err)
		}
	}
	return o, nil
}

// Config is the kind cluster configuration: one control-plane node running o.NodeImage, the API
// server on 127.0.0.1.
func Config(o Options) *v1alpha4.Cluster {
	cfg := &v1alpha4.Cluster{
		TypeMeta:   v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Name:       o.Name,
		Nodes:      []v1alpha4.Node{{Role: v1alpha4.ControlPlaneRole, Image: o.NodeImage}},
		Networking: v1alpha4.Networking{APIServerAddress: "127.0.0.1"},
	}
	v1alpha4.SetDefaultsCluster(cfg)
	return cfg
}

// Up creates the kind cluster o.Name with engine e unless it exists, writes its kubeconfig to
// o.Kubeconfig, and loads o.Images into every node.
func Up(e Engine, o Options, logf func(string, ...any)) error {
	o, err := o.withDefaults()
	if err != nil {
		return err
	}
	p := cluster.NewProvider(e.providerOption(), cluster.ProviderWithLogger(kindcmd.NewLogger()))
	existing, err := p.List()
	if err != nil {
		return fmt.Errorf("listing kind clusters with %s: %w", e.Name, err)
	}
	if slices.Contains(existing, o.Name) {
		logf("kind cluster %q exists; reusing it", o.Name)
	} else {
		// kind also merges the kubeconfig into a file; keep it away from ~/.kube/config.
		tmp, err := os.MkdirTemp("", "kind-kubeconfig-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		logf("creating kind cluster %q with %s", o.Name, e.Name)
		err = p.Create(o.Name,
			cluster.CreateWithV1Alpha4Config(Config(o)),
			cluster.CreateWithNodeImage(o.NodeImage),
			cluster.CreateWithWaitForReady(o.Wait),
			cluster.CreateWithKubeconfigPath(filepath.Join(tmp, "kubeconfig")),
			cluster.CreateWithDisplayUsage(false),
			cluster.CreateWithDisplaySalutation(false),
		)
		if err != nil {
			return fmt.Errorf("creating kind cluster %q: %w", o.Name, err)
		}
	}
	kc, err := p.KubeConfig(o.Name, false)
	if err != nil {
		return fmt.Errorf("kubeconfig of kind cluster %q: %w", o.Name, err)
	}
	if err := os.MkdirAll(filepath.Dir(o.Kubeconfig), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(o.Kubeconfig, []byte(kc), 0o600); err != nil {
		return err
	}
	nodes, err := p.ListNodes(o.Name)
	if err != nil {
		return fmt.Errorf("nodes of kind cluster %q: %w", o.Name, err)
	}
	for _, img := range o.Images {
		for _, n := range nodes {
			logf("loading %s into node %s", filepath.Base(img), n.String())
			if err := loadImage(n, img); err != nil {
				return err
			}
		}
	}
	return nil
}

func loadImage(n nodes.Node, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := nodeutils.LoadImageArchive(n, f); err != nil {
		return fmt.Errorf("loading %s into node %s: %w", path, n, err)
	}
	return nil
}
