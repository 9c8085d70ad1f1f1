package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/podsandbox/podsandbox"
)

func TestFindCheckoutKubeconfig(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "examples", "agent")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := findCheckoutKubeconfig(deep); got != "" {
		t.Errorf("no kubeconfig yet: got %q", got)
	}
	write := func(p string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "go.mod"))
	write(filepath.Join(root, ".cluster", "kubeconfig"))
	if got, want := findCheckoutKubeconfig(deep), filepath.Join(root, ".cluster", "kubeconfig"); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	t.Setenv("KUBECONFIG", "/elsewhere")
	if got := DefaultKubeconfig(); got != "/elsewhere" {
		t.Errorf("KUBECONFIG wins: got %q", got)
	}
}

func TestFlagsCluster(t *testing.T) {
	f := Flags{Kubeconfig: filepath.Join(t.TempDir(), "missing"), PullPolicy: "Never"}
	if _, err := f.Cluster(); err == nil || !strings.Contains(err.Error(), "no such file") || Hint(err) == "" {
		t.Errorf("missing kubeconfig: %v (hint %q)", err, Hint(err))
	}
	f.PullPolicy = "Sometimes"
	if _, err := f.Cluster(); err == nil || !strings.Contains(err.Error(), "want Never, IfNotPresent or Always") {
		t.Errorf("bad pull policy: %v", err)
	}
}

func TestHint(t *testing.T) {
	never := &podsandbox.StartupError{Pod: "p", Reason: "ErrImageNeverPull"}
	if h := Hint(never); !strings.Contains(h, "make cluster-up") {
		t.Errorf("ErrImageNeverPull: %q", h)
	}
	if h := Hint(&podsandbox.StartupError{Pod: "p", Reason: "OOMKilled"}); !strings.Contains(h, "-v") {
		t.Errorf("other startup error: %q", h)
	}
	if h := Hint(errors.New("something else")); h != "" {
		t.Errorf("unknown error: %q", h)
	}
}

func TestProgressLogger(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, false).With("sandbox", "s1", "pod", "pab-sandbox-s1", "namespace", "default")
	log.Debug("pod created", "adopted", false, "uid", "u", "elapsed", 12*time.Millisecond)
	log.Debug("pod scheduled", "node", "localhost", "elapsed", 20*time.Millisecond)
	log.Debug("websocket fallback", "err", "x") // a library diagnostic: hidden unless verbose
	log.Info("sandbox ready", "mode", "http", "ip", "10.0.0.1", "elapsed", 1500*time.Millisecond)
	log.Warn("sandbox did not start", "reason", "Timeout", "message", "not ready in 1m0s")
	Quiet(log, true) // the handler is shared by loggers made With it
	log.Debug("pod started", "elapsed", time.Second)
	want := "" +
		"    pod created         0.012s  pab-sandbox-s1\n" +
		"    pod scheduled       0.020s  pab-sandbox-s1  node=localhost\n" +
		"    sandbox ready       1.500s  pab-sandbox-s1  mode=http ip=10.0.0.1\n" +
		"    WARN sandbox did not start  pab-sandbox-s1  reason=Timeout message=\"not ready in 1m0s\"\n"
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestOptionsForClient: the options suit a Client's sandboxes and factories, which refuse the
// connection options (the Client holds the cluster).
func TestOptionsForClient(t *testing.T) {
	c := Cluster{REST: &rest.Config{Host: "https://127.0.0.1:1"}, Namespace: "ns", PullPolicy: "Never", StartupTimeout: time.Minute}
	client, err := podsandbox.NewClient(c.REST) // no network I/O
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(context.Background())
	log := NewLogger(io.Discard, false)
	for _, opts := range [][]podsandbox.Option{c.Options(log), c.Options(nil)} {
		sb, err := client.NewSandbox(ImageServer, opts...)
		if err != nil {
			t.Fatalf("NewSandbox: %v", err)
		}
		if sb.Namespace() != "ns" {
			t.Errorf("namespace %q", sb.Namespace())
		}
		if _, err := client.Factory(ImageServer, append(opts, podsandbox.WithMode(podsandbox.ModeAPI))...); err != nil {
			t.Errorf("Factory: %v", err)
		}
	}
}

// TestConnectNoCluster: Connect fails with the message and hint of a cluster that does not answer.
func TestConnectNoCluster(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c := Cluster{REST: &rest.Config{Host: "http://" + addr}, Kubeconfig: "/k", Namespace: "default"}
	client, err := c.Connect(context.Background(), nil)
	if err == nil {
		client.Close(context.Background())
		t.Fatal("Connect succeeded without a cluster")
	}
	if msg := err.Error(); !strings.Contains(msg, "the cluster at http://"+addr+" (kubeconfig /k) does not answer") || !strings.Contains(Hint(err), "make cluster-up") {
		t.Errorf("error %q, hint %q", msg, Hint(err))
	}
}
