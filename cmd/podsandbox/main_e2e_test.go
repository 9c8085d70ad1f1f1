//go:build e2e

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/podsandbox/podsandbox/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

// cliRun runs one command line against the test cluster in namespace ns.
type cliResult struct {
	code           int
	stdout, stderr string
}

func cliIn(t *testing.T, ns, stdin string, args ...string) cliResult {
	t.Helper()
	env := e2e.Env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	full := append([]string{"--kubeconfig", env.Kubeconfig, "-n", ns}, args...)
	code := run(ctx, full, strings.NewReader(stdin), &out, &errb)
	return cliResult{code, out.String(), errb.String()}
}

// TestCLI drives every command of the CLI against the real cluster, on both transports: run,
// exec (output streams, exit codes and stdin pass through, argv is quoted exactly, timeouts kill),
// the file commands, list, reap --dry-run and rm; and errors are one line saying what to do.
func TestCLI(t *testing.T) {
	images := map[string]string{"http": e2e.ImageServer, "api": e2e.ImageBusybox}
	for _, mode := range []string{"http", "api"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			ns := e2e.CreateNamespace(t, "psbx-cli")
			cli := func(stdin string, args ...string) cliResult { t.Helper(); return cliIn(t, ns, stdin, args...) }
			expect := func(r cliResult, code int, stdout string) {
				t.Helper()
				if r.code != code || r.stdout != stdout {
					t.Errorf("exit %d, stdout %q (stderr %q); want exit %d, stdout %q", r.code, r.stdout, r.stderr, code, stdout)
				}
			}
			id := "cli-" + mode
			expect(cli("", "run", images[mode], "--mode", mode, "--id", id, "--image-pull-policy", "Never", "-e", "GREETING=hello there"), 0, id+"\n")

			// exec: streams, exit code, env, quoting, stdin, timeout
			r := cli("", "exec", id, "--", `echo "$GREETING"; echo to-stderr >&2; exit 3`)
			expect(r, 3, "hello there\n")
			if r.stderr != "to-stderr\n" {
				t.Errorf("stderr %q", r.stderr)
			}
			expect(cli("", "exec", id, "--", "printf", "%s|", "a b", "it's", "$(id)", "-n"), 0, "a b|it's|$(id)|-n|")
			expect(cli("abc\n", "exec", "-i", id, "--", "tr", "a-z", "A-Z"), 0, "ABC\n")
			start := time.Now()
			r = cli("", "exec", "--timeout", "1s", id, "--", "sleep 60")
			if r.code != 124 || !strings.Contains(r.stderr, "timed out") || time.Since(start) > 30*time.Second {
				t.Errorf("timeout: exit %d after %s, stderr %q", r.code, time.Since(start), r.stderr)
			}

			// files
			expect(cli("", "exec", id, "--", "mkdir -p d && printf 'alpha\\nbeta\\n' > 'd/my file.txt'"), 0, "")
			expect(cli("", "read", id, "d/my file.txt"), 0, "alpha\nbeta\n")
			expect(cli("", "edit", id, "d/my file.txt", "beta", "gamma"), 0, "/workspace/d/my file.txt: 1 replaced\n")
			expect(cli("", "read", "-N", id, "d/my file.txt"), 0, "     1\talpha\n     2\tgamma\n")
			expect(cli("", "grep", id, "gam+a", "d"), 0, "/workspace/d/my file.txt:2:gamma\n")
			expect(cli("", "grep", id, "-nothing-like-this"), 1, "")
			expect(cli("", "glob", id, "**/*.txt"), 0, "/workspace/d/my file.txt\n")
			if r := cli("", "ls", id); r.code != 0 || !strings.Contains(r.stdout, "d/\n") {
				t.Errorf("ls: %+v", r)
			}

			// list
			r = cli("", "list", "-o", "json")
			var infos []sandboxInfo
			if err := json.Unmarshal([]byte(r.stdout), &infos); err != nil || r.code != 0 {
				t.Fatalf("list -o json: %v, %+v", err, r)
			}
			if len(infos) != 1 || infos[0].ID != id || infos[0].Mode != mode || infos[0].Status != "Running" || infos[0].ExpiresAt.IsZero() {
				t.Errorf("list: %+v", infos)
			}
			if r := cli("", "list", "-o", "wide"); !strings.HasPrefix(r.stdout, "ID ") || !strings.Contains(r.stdout, id+" ") || !strings.Contains(r.stdout, images[mode]) {
				t.Errorf("list -o wide:\n%s", r.stdout)
			}

			// errors: one line with what to do
			r = cli("", "exec", "no-such-id", "--", "true")
			if r.code != 1 || !strings.Contains(r.stderr, "no such sandbox") || !strings.Contains(r.stderr, "podsandbox list") || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("unknown id: %+v", r)
			}
			if r := cli("", "list", "-o", "xml"); r.code != 1 || !strings.Contains(r.stderr, "use json, yaml or wide") {
				t.Errorf("bad -o: %+v", r)
			}

			// reap --dry-run: nothing is idle yet, nothing is deleted
			expect(cli("", "reap", "--dry-run"), 0, "would delete 0 pods, 0 orphaned token Secrets in "+ns+"\n")

			// rm
			expect(cli("", "rm", id), 0, id+"\n")
			r = cli("", "list", "-o", "json")
			_ = json.Unmarshal([]byte(r.stdout), &infos)
			if len(infos) > 0 && infos[0].Status != "Terminating" {
				t.Errorf("after rm: %+v", infos)
			}
			if r := cli("", "exec", id, "--", "true"); r.code != 1 {
				t.Errorf("exec after rm: %+v", r)
			}
		})
	}
}
