package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// TestNoContainerEngine: without Docker or Podman on PATH the program exits 1 at once, with one
// line saying why and what to use instead, and does nothing else.
func TestNoContainerEngine(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("KIND_EXPERIMENTAL_PROVIDER", "")
	cache := t.TempDir()
	t.Setenv("PODSANDBOX_CACHE", cache) // nothing may be built there
	var stdout, stderr bytes.Buffer
	code := realMain(context.Background(), nil, &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	msg := stderr.String()
	if strings.Count(msg, "\n") != 1 || !strings.HasSuffix(msg, "\n") {
		t.Errorf("want exactly one line on stderr, got %q", msg)
	}
	for _, want := range []string{"kind example: ", "needs Docker or Podman", "make cluster-up", "none is on PATH"} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr %q lacks %q", msg, want)
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout: %q", stdout.String())
	}
	if entries, _ := os.ReadDir(cache); len(entries) != 0 {
		t.Errorf("something was built before the engine check: %v", entries)
	}
}

// TestBrokenEngine: an engine on PATH that does not work is named in the same one line.
func TestBrokenEngine(t *testing.T) {
	dir := t.TempDir()
	writeScript(t, dir+"/docker", "#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' >&2\nexit 1\n")
	t.Setenv("PATH", dir)
	t.Setenv("KIND_EXPERIMENTAL_PROVIDER", "")
	var stdout, stderr bytes.Buffer
	if code := realMain(context.Background(), nil, &stdout, &stderr); code != 1 {
		t.Errorf("exit code %d", code)
	}
	msg := stderr.String()
	if strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "docker at "+dir+"/docker does not work") || !strings.Contains(msg, "Is the docker daemon running?") {
		t.Errorf("stderr: %q", msg)
	}
}

func TestDecodeRBAC(t *testing.T) {
	data := []byte("# comment\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n---\n# only a comment\n---\n" +
		"apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: r\nrules:\n  - apiGroups: [\"\"]\n    resources: [\"pods\"]\n    verbs: [\"get\"]\n")
	objs, err := decodeAll(data)
	if err != nil || len(objs) != 2 {
		t.Fatalf("%d objects, %v", len(objs), err)
	}
	// The file the program applies.
	data, err = os.ReadFile("../../deploy/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if objs, err = decodeAll(data); err != nil || len(objs) != 3 {
		t.Fatalf("deploy/rbac.yaml: %d objects, %v", len(objs), err)
	}
}

func writeScript(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
}
