//go:build e2e

package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/examples/internal/cli"
	"github.com/podsandbox/podsandbox/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

// TestAgentScripted runs the seed task with the scripted model: CI has no API key, and Getenv is
// nil, so no key in the environment can turn this into a network call.
func TestAgentScripted(t *testing.T) {
	env := e2e.Env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var buf cli.Buffer
	cfg := Config{
		Cluster: cli.Cluster{REST: env.Config, Namespace: env.Namespace, PullPolicy: "Never", StartupTimeout: 3 * time.Minute},
		Image:   e2e.ImageServer,
		Mode:    podsandbox.ModeHTTP,
		Model:   "auto",
	}
	err := run(ctx, cfg, &buf)
	out := buf.String()
	t.Logf("output:\n%s", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Task:  Create /workspace/hello.txt with 'hello world', then read it back\n",
		"Model: scripted",
		"sandbox ready",
		"Tools: ls, read_file, write_file, edit_file, glob, grep, execute\n",
		`  [1] write_file {"path":"/workspace/hello.txt","content":"hello world\n"}`,
		"      → Wrote 1 lines to /workspace/hello.txt\n",
		`  [2] read_file {"path":"/workspace/hello.txt"}`,
		"      →      1\thello world\n",
		"Answer: I created /workspace/hello.txt and read it back. It contains: hello world\n",
		`Check: /workspace/hello.txt holds "hello world\n"`,
		"stopped: pod ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestAgentAPIMode: the same agent over the pods/exec transport, with an image that has no server.
func TestAgentAPIMode(t *testing.T) {
	env := e2e.Env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var buf cli.Buffer
	cfg := Config{
		Cluster: cli.Cluster{REST: env.Config, Namespace: env.Namespace, PullPolicy: "Never", StartupTimeout: 3 * time.Minute},
		Image:   e2e.ImageBusybox,
		Mode:    podsandbox.ModeAPI,
		Model:   "scripted",
	}
	err := run(ctx, cfg, &buf)
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if !strings.Contains(buf.String(), "      → Wrote 1 lines to /workspace/hello.txt\n") {
		t.Errorf("output:\n%s", buf.String())
	}
}
