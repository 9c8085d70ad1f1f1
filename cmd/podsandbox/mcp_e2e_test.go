//go:build e2e

package main

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/internal/e2e"
	"github.com/podsandbox/podsandbox/mcpserver"
)

// call calls a tool and returns its text; isErr says whether the result is a tool error.
func call(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) (text string, isErr bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String(), res.IsError
}

// driveTools calls every tool of the toolset through an MCP client session and checks upstream's
// output strings; file names carry the session's tag, so two sessions at once can be told apart.
func driveTools(t *testing.T, cs *mcp.ClientSession, tag string) {
	t.Helper()
	ctx := context.Background()
	lt, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range lt.Tools {
		names = append(names, tool.Name)
		if tool.Name == "read_file" && (tool.Annotations == nil || !tool.Annotations.ReadOnlyHint) {
			t.Errorf("read_file is not annotated read-only: %+v", tool.Annotations)
		}
	}
	slices.Sort(names) // the SDK lists tools by name
	if want := []string{"edit_file", "execute", "glob", "grep", "ls", "read_file", "write_file"}; !slices.Equal(names, want) {
		t.Errorf("tools %v, want %v", names, want)
	}
	file := "notes-" + tag + ".txt"
	check := func(name string, args map[string]any, want string) {
		t.Helper()
		got, isErr := call(t, cs, name, args)
		if isErr || !strings.Contains(got, want) {
			t.Errorf("%s %v: %q (error %v), want it to contain %q", name, args, got, isErr, want)
		}
	}
	check("write_file", map[string]any{"path": file, "content": "alpha\nbeta\n"}, "Wrote 2 lines to")
	check("read_file", map[string]any{"path": file}, "     1\talpha\n     2\tbeta")
	check("edit_file", map[string]any{"path": file, "old_string": "beta", "new_string": "gamma"}, "replaced 1 occurrence(s)")
	check("grep", map[string]any{"pattern": "gam+a"}, file)
	check("glob", map[string]any{"pattern": "*.txt"}, file)
	check("ls", map[string]any{"path": "."}, file)
	check("execute", map[string]any{"command": "cat " + file + "; echo tag=" + tag}, "alpha\ngamma\ntag="+tag)
	if got, isErr := call(t, cs, "read_file", map[string]any{"path": "missing.txt"}); isErr || !strings.HasPrefix(got, "Error:") {
		t.Errorf("a missing file: %q (tool error %v), want upstream's Error: text as a result", got, isErr)
	}
	if got, isErr := call(t, cs, "write_file", map[string]any{"content": "x"}); !isErr || !strings.Contains(got, "path") {
		t.Errorf("a missing argument: %q (tool error %v)", got, isErr)
	}
}

func managedPodCount(t *testing.T, ns string) int {
	t.Helper()
	return len(e2e.LivePods(t, ns, ""))
}

func waitPods(t *testing.T, ns string, want int) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for managedPodCount(t, ns) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d live sandbox pods in %s, want %d", managedPodCount(t, ns), ns, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestMCPStdio: `podsandbox mcp` (the built binary) driven by the SDK's client over stdio, in API
// mode through the injected agent (--agent): every tool works; without --approve-all, execute is refused with a result saying how to
// allow it; the session's sandbox is deleted when the client disconnects.
func TestMCPStdio(t *testing.T) {
	t.Parallel()
	env := e2e.Env(t)
	ns := e2e.CreateNamespace(t, "psbx-mcp-stdio")
	bin := filepath.Join(t.TempDir(), "podsandbox")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	connect := func(extra ...string) *mcp.ClientSession {
		args := append([]string{"--kubeconfig", env.Kubeconfig, "-n", ns, "mcp", "--image", e2e.ImageBusybox, "--mode", "api",
			"--image-pull-policy", "Never"}, extra...)
		client := mcp.NewClient(&mcp.Implementation{Name: "e2e"}, nil)
		cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: exec.Command(bin, args...)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}

	agentBin, err := e2e.BuildAgent()
	if err != nil {
		t.Fatal(err)
	}
	agent := filepath.Join(t.TempDir(), "psbx-agent")
	if err := os.WriteFile(agent, agentBin, 0o755); err != nil {
		t.Fatal(err)
	}
	cs := connect("--approve-all", "--agent", agent)
	driveTools(t, cs, "stdio")
	// The calls went through the injected agent: it is the parent of the command's shell.
	if got, isErr := call(t, cs, "execute", map[string]any{"command": `tr '\0' ' ' </proc/$PPID/cmdline`}); isErr || !strings.Contains(got, "-stdio") {
		t.Errorf("--agent: the command's parent is %q (tool error %v), want the agent (-stdio)", got, isErr)
	}
	if n := managedPodCount(t, ns); n != 1 {
		t.Errorf("%d sandbox pods for one session", n)
	}
	if err := cs.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	waitPods(t, ns, 0)

	// Without --approve-all, and with a warm pool: the pool starts a pod before any session
	// (whether the session then claims it or starts cold depends on when it is ready; the library's
	// e2e tests cover claims), execute is refused, and closing the session ends the server, which
	// deletes every pod.
	cs = connect("--pool", "1")
	deadline := time.Now().Add(90 * time.Second)
	for len(e2e.LivePods(t, ns, podsandbox.LabelPool+"=mcp")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("--pool 1: no pod of pool mcp after 90 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got, isErr := call(t, cs, "write_file", map[string]any{"path": "w.txt", "content": "warm"}); isErr {
		t.Fatalf("write_file: %s", got)
	}
	got, isErr := call(t, cs, "execute", map[string]any{"command": "true"})
	if !isErr || !strings.Contains(got, "--approve-all") {
		t.Errorf("execute without approval: %q (tool error %v)", got, isErr)
	}
	if err := cs.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	waitPods(t, ns, 0)
}

// TestMCPHTTP: the streamable HTTP transport, HTTP-mode sandboxes: two MCP sessions at once each
// get their own sandbox and see only their own files; ending a session deletes its sandbox.
func TestMCPHTTP(t *testing.T) {
	t.Parallel()
	env := e2e.Env(t)
	ns := e2e.CreateNamespace(t, "psbx-mcp-http")
	c, err := podsandbox.NewClient(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	f, err := c.Factory(e2e.ImageServer, podsandbox.WithNamespace(ns), podsandbox.WithImagePullPolicy("Never"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := podsandbox.NewSessionManager(f)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(context.Background())
	s, err := mcpserver.New(m, mcpserver.WithApproveAll())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.HTTPHandler(0))
	defer hs.Close()
	defer s.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sessions := make([]*mcp.ClientSession, 2)
	for i := range sessions {
		client := mcp.NewClient(&mcp.Implementation{Name: "e2e"}, nil)
		cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: hs.URL}, nil)
		if err != nil {
			t.Fatal(err)
		}
		sessions[i] = cs
	}
	var wg sync.WaitGroup
	for i, cs := range sessions {
		wg.Go(func() { driveTools(t, cs, []string{"one", "two"}[i]) })
	}
	wg.Wait()
	if n := managedPodCount(t, ns); n != 2 {
		t.Errorf("%d sandbox pods for two sessions", n)
	}
	// each session sees its own file only
	for i, cs := range sessions {
		other := "notes-" + []string{"two", "one"}[i] + ".txt"
		if got, isErr := call(t, cs, "read_file", map[string]any{"path": other}); isErr || !strings.Contains(got, "not found") {
			t.Errorf("session %d reads the other session's %s: %q", i, other, got)
		}
	}
	if err := sessions[0].Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	waitPods(t, ns, 1)
	if got, _ := call(t, sessions[1], "execute", map[string]any{"command": "echo still"}); !strings.Contains(got, "still") {
		t.Errorf("the other session after the first ended: %q", got)
	}
	_ = sessions[1].Close()
	waitPods(t, ns, 0)
}
