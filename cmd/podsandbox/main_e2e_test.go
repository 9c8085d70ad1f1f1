//go:build e2e

package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/podsandbox/podsandbox"
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
// the file commands, cp, list, reap --dry-run and rm; and errors are one line saying what to do.
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
			start = time.Now()
			r = cli("", "exec", "--no-output-timeout", "1s", id, "--", "echo hi; sleep 60")
			if r.code != 124 || r.stdout != "hi\n" || !strings.Contains(r.stderr, "wrote nothing for 1s") || time.Since(start) > 30*time.Second {
				t.Errorf("no-output timeout: exit %d after %s, stdout %q, stderr %q", r.code, time.Since(start), r.stdout, r.stderr)
			}

			// a terminal: 24x80 when stdout is not one; input typed in
			expect(cli("", "exec", "-t", id, "--", "[ -t 0 ] && [ -t 2 ] && stty size; exit 4"), 4, "24 80\r\n")
			if r := cli("hi\n", "exec", "-i", "-t", id, "--", `read -r l; echo "got:$l"`); r.code != 0 || !strings.Contains(r.stdout, "got:hi\r\n") {
				t.Errorf("exec -i -t: %+v", r)
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

			cpCases(t, ns, id, cli, expect)
			procCases(t, id, cli, expect)

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

// cpCases is TestCLI's part for cp, on sandbox id (in either mode): a file of every byte value
// whose name has spaces goes up and comes back byte-identical, checked by the sandbox's own
// md5sum as well as by the round trip; - is stdin and stdout; directories as destinations get the
// source's base name; a missing or directory source, and a file over --max-file-bytes, fail with
// one line saying what to do.
func cpCases(t *testing.T, ns, id string, cli func(stdin string, args ...string) cliResult, expect func(cliResult, int, string)) {
	all := make([]byte, 0, 3*256)
	for range 3 {
		for b := range 256 {
			all = append(all, byte(b))
		}
	}
	sum := fmt.Sprintf("%x", md5.Sum(all))
	local := filepath.Join(t.TempDir(), "local dir")
	down := filepath.Join(t.TempDir(), "down dir")
	for _, d := range []string{local, down} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src := filepath.Join(local, "all bytes.bin")
	if err := os.WriteFile(src, all, 0o644); err != nil {
		t.Fatal(err)
	}
	same := func(name string) {
		t.Helper()
		if got, err := os.ReadFile(name); err != nil || !bytes.Equal(got, all) {
			t.Errorf("%s: %d bytes, %v; want the %d bytes sent", name, len(got), err, len(all))
		}
	}

	// up into a new directory (trailing slash: the base name), checked inside the sandbox
	expect(cli("", "cp", src, id+":up dir/"), 0, "")
	expect(cli("", "exec", id, "--", "md5sum", "up dir/all bytes.bin"), 0, sum+"  up dir/all bytes.bin\n")
	// and down into a local directory
	expect(cli("", "cp", id+":up dir/all bytes.bin", down), 0, "")
	same(filepath.Join(down, "all bytes.bin"))
	// down to a named file, by absolute path
	expect(cli("", "cp", id+":/workspace/up dir/all bytes.bin", filepath.Join(down, "copy two.bin")), 0, "")
	same(filepath.Join(down, "copy two.bin"))
	// an existing sandbox directory named without the slash
	expect(cli("", "cp", src, id+":/tmp"), 0, "")
	expect(cli("", "exec", id, "--", "md5sum", "/tmp/all bytes.bin"), 0, sum+"  /tmp/all bytes.bin\n")
	// - is stdin and stdout
	expect(cli(string(all), "cp", "-", id+":from stdin.bin"), 0, "")
	expect(cli("", "exec", id, "--", "md5sum", "from stdin.bin"), 0, sum+"  from stdin.bin\n")
	if r := cli("", "cp", id+":from stdin.bin", "-"); r.code != 0 || r.stdout != string(all) {
		t.Errorf("cp to -: exit %d, %d bytes (md5 %x), stderr %q; want the %d bytes sent", r.code, len(r.stdout), md5.Sum([]byte(r.stdout)), r.stderr, len(all))
	}

	// errors: one line, exit 1, nothing written
	oneLine := func(r cliResult, want ...string) {
		t.Helper()
		ok := r.code == 1 && r.stdout == "" && strings.Count(r.stderr, "\n") == 1
		for _, w := range want {
			ok = ok && strings.Contains(r.stderr, w)
		}
		if !ok {
			t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and one line with %q", r.code, r.stdout, r.stderr, want)
		}
	}
	oneLine(cli("", "cp", id+":no such file.bin", down),
		"sandbox "+id+" has no file /workspace/no such file.bin: no such file or directory", "podsandbox -n "+ns+" ls "+id+" /workspace")
	if _, err := os.Stat(filepath.Join(down, "no such file.bin")); err == nil {
		t.Errorf("a failed cp left a local file")
	}
	oneLine(cli("", "cp", id+":up dir", down), id+":/workspace/up dir is a directory: cp copies one file; archive it first")
	oneLine(cli("", "cp", "--max-file-bytes", "100", id+":from stdin.bin", "-"),
		"file too large: "+id+":/workspace/from stdin.bin is 768 B, over the file limit of 100 B")
	oneLine(cli("x", "cp", "-", id+":/tmp"), id+":/tmp is a directory: give the file's path, "+id+":/tmp/NAME")
	oneLine(cli("", "cp", src, "no-such-sandbox:x"), `no such sandbox: "no-such-sandbox"`, "podsandbox list")
}

// poolJSON runs `pool -o json` and returns the row of pool name.
func poolJSON(t *testing.T, ns, name string) poolInfo {
	t.Helper()
	r := cliIn(t, ns, "", "pool", "-o", "json")
	var rows []poolInfo
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || r.code != 0 {
		t.Fatalf("pool -o json: %v, %+v", err, r)
	}
	i := slices.IndexFunc(rows, func(p poolInfo) bool { return p.Pool == name })
	if i < 0 || len(rows) != 1 {
		t.Fatalf("pool -o json: %+v, want one row, of pool %s", rows, name)
	}
	return rows[i]
}

// TestCLIPool: `pool` reports a SessionManager's warm pool of one pod as warm, and the pod as
// claimed once a session has claimed it.
func TestCLIPool(t *testing.T) {
	t.Parallel()
	env := e2e.Env(t)
	ns := e2e.CreateNamespace(t, "psbx-cli-pool")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, err := podsandbox.NewClient(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	f, err := c.Factory(e2e.ImageBusybox, podsandbox.WithNamespace(ns), podsandbox.WithMode(podsandbox.ModeAPI),
		podsandbox.WithImagePullPolicy("Never"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := podsandbox.NewSessionManager(f, podsandbox.WithWarmPool(1, podsandbox.WithPoolName("cli")))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(context.Background())

	if r := cliIn(t, ns, "", "pool"); r.code != 0 || r.stdout != "" || r.stderr != "No warm pools in namespace "+ns+".\n" {
		t.Errorf("pool before the pool started: %+v", r)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for m.Pool().Ready() < 1 { // the pool's own word that its pod is ready; the CLI must agree
		if ctx.Err() != nil {
			t.Fatalf("the warm pool has no ready pod: %v", ctx.Err())
		}
		time.Sleep(100 * time.Millisecond)
	}
	p := poolJSON(t, ns, "cli")
	if p.Warm != 1 || p.Starting != 0 || p.Claimed != 0 || p.Mode != "api" || p.Image != e2e.ImageBusybox || len(p.Spec) != 16 || p.Oldest.IsZero() {
		t.Errorf("a warm pool of one: %+v", p)
	}
	r := cliIn(t, ns, "", "pool")
	if !strings.HasPrefix(r.stdout, "POOL ") || !strings.Contains(r.stdout, "\ncli ") || !strings.Contains(r.stdout, p.Spec) {
		t.Errorf("pool:\n%s", r.stdout)
	}
	if r := cliIn(t, ns, "", "pool", "-o", "wide"); !strings.Contains(r.stdout, "TERMINATING") || !strings.Contains(r.stdout, e2e.ImageBusybox) {
		t.Errorf("pool -o wide:\n%s", r.stdout)
	}

	sb, err := m.GetOrCreate(ctx, "cli-session")
	if err != nil {
		t.Fatal(err)
	}
	if ks, ok := sb.(*podsandbox.KubernetesPodSandbox); !ok || !strings.HasPrefix(ks.PodName(), podsandbox.PodNamePrefix+"pool-cli-") {
		t.Fatalf("the session did not get the warm pod: %T %+v", sb, sb)
	}
	claimed := poolJSON(t, ns, "cli")
	// the pool refills at once, so a new pod may be warm or starting already
	if claimed.Claimed != 1 || claimed.Spec != p.Spec || claimed.Warm+claimed.Starting > 1 {
		t.Errorf("after the claim: %+v", claimed)
	}
}

// TestCLIImages: `images` lists the local images the e2e tests run on the node, and says which
// permission is missing when RBAC forbids listing nodes.
func TestCLIImages(t *testing.T) {
	t.Parallel()
	env := e2e.Env(t)
	ns := e2e.CreateNamespace(t, "psbx-cli-images")
	r := cliIn(t, ns, "", "images", "-o", "json")
	var rows []nodeImage
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || r.code != 0 {
		t.Fatalf("images -o json: %v, %+v", err, r)
	}
	i := slices.IndexFunc(rows, func(im nodeImage) bool { return slices.Contains(im.Names, e2e.ImageBusybox) })
	if i < 0 || rows[i].Node == "" || rows[i].Size <= 0 || rows[i].Image != e2e.ImageBusybox {
		t.Fatalf("images -o json has no %s: %+v", e2e.ImageBusybox, rows)
	}
	r = cliIn(t, ns, "", "images", "podsandbox.local/busybox")
	if want := "NODE "; r.code != 0 || !strings.HasPrefix(r.stdout, want) || !strings.Contains(r.stdout, rows[i].Node+" ") ||
		!strings.Contains(r.stdout, " "+e2e.ImageBusybox+" ") || strings.Contains(r.stdout, e2e.ImagePython) {
		t.Errorf("images podsandbox.local/busybox: %+v", r)
	}

	// the same kubeconfig, as the namespace's default ServiceAccount, which may not list nodes
	cfg, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range cfg.AuthInfos {
		u.Impersonate = "system:serviceaccount:" + ns + ":default"
	}
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, kc); err != nil {
		t.Fatal(err)
	}
	r = cliIn(t, ns, "", "--kubeconfig", kc, "images")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "forbidden") ||
		!strings.Contains(r.stderr, "needs the cluster-scoped `list nodes` permission") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("images without list nodes: %+v", r)
	}
}

// procCases: a background process started by one command line is listed, followed, signalled
// and waited for by later ones, each with a Client of its own.
func procCases(t *testing.T, id string, cli func(string, ...string) cliResult, expect func(cliResult, int, string)) {
	t.Helper()
	r := cli("", "proc", "start", id, "-e", "WHO=you there", "--", `trap 'echo bye; exit 4' TERM; echo "hello $WHO"; echo warn >&2; while :; do sleep 0.1; done`)
	proc := strings.TrimSpace(r.stdout)
	if r.code != 0 || !strings.HasPrefix(proc, "p-") {
		t.Fatalf("proc start: %+v", r)
	}
	deadline := time.Now().Add(30 * time.Second)
	for r = cli("", "proc", "logs", id, proc); r.stdout != "hello you there\n" || r.stderr != "warn\n"; r = cli("", "proc", "logs", id, proc) {
		if r.code != 0 || time.Now().After(deadline) {
			t.Fatalf("proc logs: %+v", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := cli("", "proc", "ls", id); r.code != 0 || !strings.Contains(r.stdout, proc+"   running ") {
		t.Errorf("proc ls:\n%s%s", r.stdout, r.stderr)
	}
	expect(cli("", "proc", "kill", "-s", "term", id, proc), 0, "")
	expect(cli("", "proc", "wait", id, proc), 4, "")
	expect(cli("", "proc", "logs", "-f", id, proc), 0, "hello you there\nbye\n")
	var list []podsandbox.ProcessStatus
	if r := cli("", "proc", "ls", "-o", "json", id); json.Unmarshal([]byte(r.stdout), &list) != nil || len(list) != 1 || list[0].ExitCode != 4 || list[0].State != podsandbox.ProcessExited {
		t.Errorf("proc ls -o json: %+v", r)
	}
	if r := cli("", "proc", "kill", id, proc); r.code != 1 || !strings.Contains(r.stderr, "already exited") {
		t.Errorf("kill after exit: %+v", r)
	}
	if r := cli("", "proc", "kill", "-s", "BOGUS", id, proc); r.code != 1 || !strings.Contains(r.stderr, "want a name") {
		t.Errorf("kill -s BOGUS: %+v", r)
	}
	expect(cli("", "proc", "rm", id, proc), 0, proc+"\n")

	// stdin: written by one command line, closed by another.
	r = cli("", "proc", "start", "--stdin", id, "--", `while read -r l; do echo "in: $l"; done; echo done`)
	reader := strings.TrimSpace(r.stdout)
	if r.code != 0 || !strings.HasPrefix(reader, "p-") {
		t.Fatalf("proc start --stdin: %+v", r)
	}
	expect(cli("one\ntwo\n", "proc", "write", id, reader), 0, "")
	expect(cli("three\n", "proc", "write", "--close", id, reader), 0, "")
	expect(cli("", "proc", "wait", id, reader), 0, "")
	expect(cli("", "proc", "logs", id, reader), 0, "in: one\nin: two\nin: three\ndone\n")
	if r := cli("x\n", "proc", "write", id, reader); r.code != 1 || !strings.Contains(r.stderr, "already exited") {
		t.Errorf("proc write after exit: %+v", r)
	}
	expect(cli("", "proc", "rm", id, reader), 0, reader+"\n")
	// exec --request-id: the second run prints the first's output and code without running again.
	for range 2 {
		expect(cli("", "exec", "--request-id", "cli-req", id, "--", "echo run >> /tmp/cli-req.runs; echo done; exit 6"), 6, "done\n")
	}
	expect(cli("", "exec", id, "--", "cat /tmp/cli-req.runs"), 0, "run\n")
	expect(cli("", "exec", "--reattach", id, "--", "echo again"), 0, "again\n")
	expect(cli("", "proc", "rm", id, "cli-req"), 0, "cli-req\n")
	if r := cli("", "proc", "logs", id, proc); r.code != 1 || !strings.Contains(r.stderr, "no such background process") || !strings.Contains(r.stderr, "proc ls") {
		t.Errorf("logs after rm: %+v", r)
	}
}

// TestCLIIsolation: run --runtime-class gvisor --egress-allow makes a sandbox on gVisor's kernel
// with its NetworkPolicy carrying the allow-list; rm deletes both; a bad --egress-allow is one line.
func TestCLIIsolation(t *testing.T) {
	e2e.RequireGVisor(t)
	t.Parallel()
	env := e2e.Env(t)
	ns := e2e.CreateNamespace(t, "psbx-cli-iso")
	id := "cli-gvisor"
	r := cliIn(t, ns, "", "run", e2e.ImageBusybox, "--mode", "api", "--id", id, "--image-pull-policy", "Never",
		"--runtime-class", e2e.GVisorClass, "--egress-allow", "192.0.2.0/24:443,8443")
	if r.code != 0 || r.stdout != id+"\n" {
		t.Fatalf("run: %+v", r)
	}
	if r := cliIn(t, ns, "", "exec", id, "--", "uname -r"); r.code != 0 || !strings.Contains(r.stdout, "gvisor") {
		t.Errorf("uname -r: %+v, want gVisor's kernel", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	np, err := env.Client.NetworkingV1().NetworkPolicies(ns).Get(ctx, podsandbox.PodName(id), metav1.GetOptions{})
	if err != nil || len(np.Spec.Egress) != 2 || np.Spec.Egress[1].To[0].IPBlock == nil || np.Spec.Egress[1].To[0].IPBlock.CIDR != "192.0.2.0/24" || len(np.Spec.Egress[1].Ports) != 4 {
		t.Errorf("the sandbox's NetworkPolicy: %+v %v; want DNS and 192.0.2.0/24 on 443 and 8443 (TCP and UDP)", np, err)
	}
	if r := cliIn(t, ns, "", "rm", id); r.code != 0 {
		t.Errorf("rm: %+v", r)
	}
	for {
		_, err := env.Client.NetworkingV1().NetworkPolicies(ns).Get(ctx, podsandbox.PodName(id), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the policy outlived rm: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	r = cliIn(t, ns, "", "run", e2e.ImageBusybox, "--mode", "api", "--egress-allow", "example.com:443")
	if r.code == 0 || !strings.Contains(r.stderr, "want CIDR") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("bad --egress-allow: %+v", r)
	}
}
