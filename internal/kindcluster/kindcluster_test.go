package kindcluster

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
)

func TestDetectEngine(t *testing.T) {
	t.Parallel()
	infoErr := errors.New("Cannot connect to the Docker daemon")
	tests := []struct {
		name      string
		preferred string
		onPath    []string // engines found by lookPath
		broken    []string // engines whose info fails
		want      string
		wantErr   []string
		noEngine  bool
	}{
		{name: "none", noEngine: true, wantErr: []string{"docker", "podman", "make cluster-up"}},
		{name: "docker", onPath: []string{"docker", "podman"}, want: "docker"},
		{name: "podman only", onPath: []string{"podman"}, want: "podman"},
		{name: "docker daemon down, podman works", onPath: []string{"docker", "podman"}, broken: []string{"docker"}, want: "podman"},
		{name: "docker daemon down", onPath: []string{"docker"}, broken: []string{"docker"}, noEngine: true,
			wantErr: []string{"docker at /usr/bin/docker does not work", "Cannot connect"}},
		{name: "preferred podman", preferred: "podman", onPath: []string{"docker", "podman"}, want: "podman"},
		{name: "preferred missing", preferred: "podman", onPath: []string{"docker"}, noEngine: true},
		{name: "preferred unknown", preferred: "lxc", onPath: []string{"docker"}, wantErr: []string{"KIND_EXPERIMENTAL_PROVIDER"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lookPath := func(n string) (string, error) {
				for _, p := range tt.onPath {
					if p == n {
						return "/usr/bin/" + n, nil
					}
				}
				return "", errors.New("not found")
			}
			info := func(path string) error {
				for _, b := range tt.broken {
					if filepath.Base(path) == b {
						return infoErr
					}
				}
				return nil
			}
			e, err := detectEngine(tt.preferred, lookPath, info)
			if tt.want != "" {
				if err != nil || e.Name != tt.want || e.Path != "/usr/bin/"+tt.want {
					t.Fatalf("got %+v, %v; want %s", e, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %+v, want an error", e)
			}
			if errors.Is(err, ErrNoEngine) != tt.noEngine {
				t.Errorf("errors.Is(%v, ErrNoEngine) = %t, want %t", err, !tt.noEngine, tt.noEngine)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	t.Parallel()
	if _, err := (Options{}).withDefaults(); err == nil {
		t.Error("no Kubeconfig: want an error")
	}
	img := filepath.Join(t.TempDir(), "busybox.tar")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := Options{Kubeconfig: "/k", Images: []string{img}}.withDefaults()
	if err != nil || o.Name != DefaultName || o.Wait != 5*time.Minute {
		t.Errorf("got %+v, %v", o, err)
	}
	if _, err := (Options{Kubeconfig: "/k", Images: []string{img + ".missing"}}).withDefaults(); err == nil {
		t.Error("a missing image archive: want an error")
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	cfg := Config(Options{Name: "x", NodeImage: "kindest/node:v1.36.3"})
	if cfg.Name != "x" || len(cfg.Nodes) != 1 || cfg.Nodes[0].Role != v1alpha4.ControlPlaneRole ||
		cfg.Nodes[0].Image != "kindest/node:v1.36.3" || cfg.Networking.APIServerAddress != "127.0.0.1" {
		t.Errorf("config %+v", cfg)
	}
	if def := Config(Options{}); def.Nodes[0].Image == "" {
		t.Error("no node image: want kind's default filled in")
	}
}

func TestLastLine(t *testing.T) {
	t.Parallel()
	out := "Client:\n Context: default\n\nServer:\nCannot connect to the Docker daemon. Is it running?\n\n"
	if got := lastLine([]byte(out)); got != "Cannot connect to the Docker daemon. Is it running?" {
		t.Errorf("got %q", got)
	}
}
