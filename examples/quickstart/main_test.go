//go:build e2e

package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/podsandbox/podsandbox/examples/internal/cli"
	"github.com/podsandbox/podsandbox/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

func TestQuickstart(t *testing.T) {
	env := e2e.Env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var buf cli.Buffer
	out := &buf
	cfg := Config{
		Cluster:     cli.Cluster{REST: env.Config, Namespace: env.Namespace, PullPolicy: "Never", StartupTimeout: 3 * time.Minute},
		PythonImage: e2e.ImagePython,
		ServerImage: e2e.ImageServer,
	}
	err := run(ctx, cfg, out)
	t.Logf("output:\n%s", buf.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"API mode: " + e2e.ImagePython,
		"pod scheduled", "pod started", "sandbox ready",
		"  $ python3 -c 'print(1+1)'\n    2\n    (exit 0,",
		"HTTP mode: " + e2e.ImageServer,
		"sandbox in /workspace",
		"    | tick 1\n    | tick 2\n    | tick 3\n",
		"Write  /workspace/notes/hello.txt: 12 bytes",
		"     1\thello\n",
		"     2\tworld\n",
		"quickstart done in",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if n := strings.Count(buf.String(), "stopped: pod "); n != 2 {
		t.Errorf("%d pods stopped, want 2", n)
	}
}
