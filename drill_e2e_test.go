//go:build e2e

package podsandbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/internal/e2e"
	"github.com/podsandbox/podsandbox/internal/faultproxy"
)

// startCutProxy starts a loopback proxy to target that the test closes when it ends.
func startCutProxy(t *testing.T, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// configVia is cfg with its API server reached through p.
func configVia(t *testing.T, cfg *rest.Config, p *faultproxy.Proxy) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.Host = "https://" + p.Addr()
	return out
}

// cutCases are the transports whose calls go through the API server.
var cutCases = []struct {
	name  string
	image string
	opts  func() []podsandbox.Option // a func: testAgent is built by TestMain, after this table
}{
	{"api-exec", e2e.ImageBusybox, func() []podsandbox.Option { return []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeAPI)} }},
	{"api-agent", e2e.ImageBusybox, func() []podsandbox.Option {
		return []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeAPI), podsandbox.WithAgent(testAgent)}
	}},
	{"http-proxy", e2e.ImageServer, func() []podsandbox.Option {
		return []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeHTTP), podsandbox.WithReach(podsandbox.ReachProxy)}
	}},
}

// startCutSandbox starts a sandbox whose Client reaches the API server through a proxy the test
// cuts, and a second handle on the same pod, not through the proxy, to watch its commands.
func startCutSandbox(t *testing.T, image string, opts []podsandbox.Option) (sb, watch *podsandbox.KubernetesPodSandbox, p *faultproxy.Proxy) {
	t.Helper()
	u, err := url.Parse(e2e.Env(t).Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	p = startCutProxy(t, u.Host)
	sb = startSandboxWith(t, testClient(t, configVia(t, restrictedConfig(t), p)), image, opts...)
	watch = startSandboxWith(t, testClient(t, restrictedConfig(t)), image, append(slices.Clone(opts), podsandbox.WithSandboxID(sb.ID()), podsandbox.WithDeleteOnStop(false))...)
	return sb, watch, p
}

// TestDrillStreamCut cuts the client's connections to the API server while a command runs, on
// every transport that goes through the API server: the call must end within seconds with
// ErrConnectionLost (never a hang, never a result that looks complete), the command must not be
// left running, and the next call must work.
func TestDrillStreamCut(t *testing.T) {
	for _, tc := range cutCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb, watch, p := startCutSandbox(t, tc.image, tc.opts())

			ctx := ctxT(t, 2*time.Minute)
			done := startDrillCommand(ctx, t, sb, watch, "echo $$ > /tmp/drill.pid; echo started; exec sleep 60", "/tmp/drill.pid")
			n := p.Cut()
			t0 := time.Now()
			var res drillResult
			select {
			case res = <-done:
			case <-time.After(time.Minute):
				t.Fatalf("Execute still running a minute after its %d connections were cut", n)
			}
			took := time.Since(t0)
			t.Logf("%d connections cut; Execute returned after %s: %v", n, took.Round(time.Millisecond), res.err)
			if !errors.Is(res.err, podsandbox.ErrConnectionLost) || !errors.Is(res.err, podsandbox.ErrOutputIncomplete) {
				t.Errorf("Execute = %+v, %v; want ErrConnectionLost (and ErrOutputIncomplete)", res.r, res.err)
			}
			if took > 10*time.Second {
				t.Errorf("Execute took %s after the cut, want a few seconds", took)
			}
			assertDead(t, watch, "/tmp/drill.pid")
			r, err := sb.Execute(ctx, "echo again")
			if err != nil || r.Stdout != "again\n" {
				t.Errorf("the next call: %+v %v", r, err)
			}
		})
	}
}

// TestDrillStreamCutReattach is TestDrillStreamCut for a call made WithReattach: the connections
// are cut twice while the command runs, and the call still returns the complete result, with the
// command run once.
func TestDrillStreamCutReattach(t *testing.T) {
	for _, tc := range cutCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb, watch, p := startCutSandbox(t, tc.image, tc.opts())

			ctx := ctxT(t, 3*time.Minute)
			var streamed bytes.Buffer
			cmd := `echo run >> /tmp/runs; tr '\0' ' ' < /proc/$PPID/cmdline > /tmp/parent; echo started; touch /tmp/drill.started; sleep 2; echo middle >&2; sleep 2; echo finished; exit 7`
			done := startDrillCommand(ctx, t, sb, watch, cmd, "/tmp/drill.started", podsandbox.WithReattach(), podsandbox.WithStdout(&lockedWriter{w: &streamed}))
			n := p.Cut()
			time.Sleep(2500 * time.Millisecond)
			n += p.Cut()
			var res drillResult
			select {
			case res = <-done:
			case <-time.After(2 * time.Minute):
				t.Fatalf("Execute still running two minutes after its %d connections were cut", n)
			}
			t.Logf("%d connections cut; Execute returned %+v, %v", n, res.r, res.err)
			if res.err != nil || res.r.Stdout != "started\nfinished\n" || res.r.Stderr != "middle\n" || res.r.ExitCode != 7 || res.r.Truncated {
				t.Errorf("Execute = %+v, %v; want the complete result", res.r, res.err)
			}
			if got := streamed.String(); got != "started\nfinished\n" {
				t.Errorf("streamed stdout %q: want each byte once", got)
			}
			if r := mustExec(t, watch, "cat /tmp/runs"); r.Stdout != "run\n" {
				t.Errorf("the command ran %d times", strings.Count(r.Stdout, "run"))
			}
			// The in-pod server (HTTP mode, the agent) runs the call itself; a pods/exec per call
			// runs it under the shell supervisor.
			want := map[string]string{"api-exec": "psbx-proc", "api-agent": "agent -stdio"}[tc.name]
			if want == "" {
				want = "sandbox-server"
			}
			if r := mustExec(t, watch, "cat /tmp/parent"); !strings.Contains(r.Stdout, want) {
				t.Errorf("the command's parent is %q, want %s", r.Stdout, want)
			}
			if n == 0 {
				t.Error("no connection was cut")
			}
		})
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// startSandboxWith starts a sandbox from c in the test namespace and stops it when the test ends.
func startSandboxWith(t *testing.T, c *podsandbox.Client, image string, opts ...podsandbox.Option) *podsandbox.KubernetesPodSandbox {
	t.Helper()
	env := e2e.Env(t)
	all := append([]podsandbox.Option{
		podsandbox.WithNamespace(env.Namespace),
		podsandbox.WithImagePullPolicy("Never"),
		podsandbox.WithResources(denseResources),
	}, opts...)
	sb, err := c.NewSandbox(image, all...)
	if err != nil {
		t.Fatalf("NewSandbox: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := sb.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := sb.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return sb
}

// TestDrillPodDeleted deletes the pod while a command runs, as an eviction or an operator does:
// the call must end with ErrSandboxGone, never with a result that looks like the command's own
// (an exit code 137 and part of its output).
func TestDrillPodDeleted(t *testing.T) {
	env := e2e.Env(t)
	for _, tc := range podDrillCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb := startSandbox(t, tc.image, tc.opts...)
			ctx := ctxT(t, 2*time.Minute)
			done := startDrillCommand(ctx, t, sb, sb, "echo started; touch /tmp/drill.started; sleep 60; echo finished", "/tmp/drill.started")
			if err := env.Client.CoreV1().Pods(env.Namespace).Delete(ctx, sb.PodName(), metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			t0 := time.Now()
			var res drillResult
			select {
			case res = <-done:
			case <-time.After(time.Minute):
				t.Fatal("Execute still running a minute after its pod was deleted")
			}
			t.Logf("Execute returned %s after the delete: %+v %v", time.Since(t0).Round(time.Millisecond), res.r, res.err)
			if !errors.Is(res.err, podsandbox.ErrSandboxGone) {
				t.Errorf("Execute = %+v, %v; want ErrSandboxGone", res.r, res.err)
			}
		})
	}
}

// drillResult is what a drill's Execute returned.
type drillResult struct {
	r   *podsandbox.ExecuteResponse
	err error
	at  time.Time // when Execute returned
}

// startDrillCommand runs cmd on sb in the background and returns once watch shows file, which cmd
// creates first: from then on the command runs, and a fault hits it mid-command.
func startDrillCommand(ctx context.Context, t *testing.T, sb, watch podsandbox.Sandbox, cmd, file string, opts ...podsandbox.ExecOption) <-chan drillResult {
	t.Helper()
	done := make(chan drillResult, 1)
	go func() {
		r, err := sb.Execute(ctx, cmd, opts...)
		done <- drillResult{r, err, time.Now()}
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		if ok, _ := watch.Exists(ctx, file); ok {
			return done
		}
		if time.Now().After(deadline) {
			t.Fatal("the command did not start within a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDrillCallerKilled: the process that called Execute WithRequestID is killed with SIGKILL
// mid-command; a fresh caller (this test) that repeats the call with the same request id gets the
// complete result, and the command has run once.
func TestDrillCallerKilled(t *testing.T) {
	env := e2e.Env(t)
	for _, tc := range []struct {
		name  string
		image string
		opts  []podsandbox.Option
	}{
		{"http-podip", e2e.ImageServer, []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeHTTP), podsandbox.WithReach(podsandbox.ReachPodIP)}},
		{"api-exec", e2e.ImageBusybox, []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeAPI)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb := startSandbox(t, tc.image, tc.opts...)
			ctx := ctxT(t, 2*time.Minute)
			rid := "drill-" + strings.ToLower(tc.name)
			child := exec.Command(os.Args[0], "-test.run=^$")
			child.Env = append(os.Environ(), "PODSANDBOX_CALLER_CHILD="+env.Namespace, "KUBECONFIG="+env.Kubeconfig,
				"CALLER_SANDBOX="+sb.ID(), "CALLER_REQUEST="+rid, "CALLER_COMMAND="+callerCommand)
			child.Stdout, child.Stderr = os.Stderr, os.Stderr
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
			waitFor(t, "the child's command to start", time.Minute, func() bool {
				ok, _ := sb.Exists(ctx, "/tmp/caller.started")
				return ok
			})
			if err := child.Process.Kill(); err != nil { // SIGKILL, mid-command: no cleanup of any kind
				t.Fatal(err)
			}
			_ = child.Wait()
			r, err := sb.Execute(ctx, callerCommand, podsandbox.WithRequestID(rid))
			if err != nil || r.Stdout != "started\nfinished\n" || r.ExitCode != 0 {
				t.Errorf("the retry after the caller's death: %+v, %v; want the complete result", r, err)
			}
			if r := mustExec(t, sb, "cat /tmp/caller.runs"); r.Stdout != "run\n" {
				t.Errorf("the command ran %d times", strings.Count(r.Stdout, "run"))
			}
		})
	}
}

const callerCommand = `echo run >> /tmp/caller.runs; echo started; touch /tmp/caller.started; sleep 3; echo finished`

// callerChild runs in the child process of TestDrillCallerKilled: it attaches to the sandbox and
// runs the command with the request id, until it is killed.
func callerChild(ns string) {
	cfg, err := podsandbox.LoadConfig(os.Getenv("KUBECONFIG"), nil)
	if err == nil {
		var c *podsandbox.Client
		if c, err = podsandbox.NewClient(cfg); err == nil {
			var sb *podsandbox.KubernetesPodSandbox
			if sb, err = c.Attach(context.Background(), ns, os.Getenv("CALLER_SANDBOX")); err == nil {
				_, err = sb.Execute(context.Background(), os.Getenv("CALLER_COMMAND"), podsandbox.WithRequestID(os.Getenv("CALLER_REQUEST")))
			}
		}
	}
	fmt.Println("caller child: not killed in time:", err)
	os.Exit(1)
}

// TestDrillServerKilled SIGKILLs the in-pod server (HTTP mode) while a command runs: the
// container ends with it, so the call must end within seconds with a typed error (the pod gone,
// or the connection lost), never a result, and the sandbox must then say it is not alive.
func TestDrillServerKilled(t *testing.T) {
	t.Parallel()
	env := e2e.Env(t)
	sb := startSandbox(t, e2e.ImageServer, podsandbox.WithMode(podsandbox.ModeHTTP), podsandbox.WithReach(podsandbox.ReachPodIP))
	ctx := ctxT(t, 2*time.Minute)
	done := startDrillCommand(ctx, t, sb, sb, "echo started; touch /tmp/drill.started; sleep 60; echo finished", "/tmp/drill.started")
	// The server is the process whose command line has -init=off (PID 1 is its init).
	kill := `for p in /proc/[0-9]*; do case "$(tr '\0' ' ' < "$p/cmdline" 2>/dev/null)" in *sandbox-server*-init=off*) kill -9 "${p#/proc/}" && echo killed;; esac; done`
	// The exec itself dies with the container (exit 137): its "killed" is what counts.
	out, stderr, err := env.Exec(ctx, env.Namespace, sb.PodName(), "", nil, "/bin/sh", "-c", kill)
	if !strings.Contains(string(out), "killed") {
		t.Fatalf("killing the server: %q %q %v", out, stderr, err)
	}
	t0 := time.Now()
	var res drillResult
	select {
	case res = <-done:
	case <-time.After(time.Minute):
		t.Fatal("Execute still running a minute after the server was killed")
	}
	took := time.Since(t0)
	t.Logf("Execute returned %s after the kill: %+v %v", took.Round(time.Millisecond), res.r, res.err)
	if !errors.Is(res.err, podsandbox.ErrSandboxGone) && !errors.Is(res.err, podsandbox.ErrConnectionLost) {
		t.Errorf("Execute = %+v, %v; want ErrSandboxGone or ErrConnectionLost", res.r, res.err)
	}
	if took > 10*time.Second {
		t.Errorf("Execute took %s after the kill, want a few seconds", took)
	}
	waitFor(t, "IsAlive to turn false", 30*time.Second, func() bool { return !sb.IsAlive(ctx) })
	if _, err := sb.Execute(ctx, "true"); !errors.Is(err, podsandbox.ErrSandboxGone) {
		t.Errorf("the next call: %v, want ErrSandboxGone", err)
	}
}

// TestDrillWorkspaceFull: a command writes past /workspace's size limit. The write is not refused
// (the kubelet enforces an emptyDir's limit by eviction, not with ENOSPC); a minute or so later
// the kubelet evicts the pod. A command running then, and every later call, fail with
// ErrSandboxGone, never a raw transport error, within 2 s of the eviction showing in the pod's
// status, and IsAlive turns false.
func TestDrillWorkspaceFull(t *testing.T) {
	env := e2e.Env(t)
	for _, tc := range podDrillCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb := startSandbox(t, tc.image, append(tc.opts, podsandbox.WithWorkspaceSize(resource.MustParse("8Mi")))...)
			ctx := ctxT(t, 5*time.Minute)
			done := startDrillCommand(ctx, t, sb, sb, "touch /tmp/drill.started; sleep 600", "/tmp/drill.started")
			r, err := sb.Execute(ctx, "dd if=/dev/zero of=fill bs=1M count=24 2>/dev/null; echo dd=$?")
			if err != nil || r.Stdout != "dd=0\n" {
				t.Fatalf("writing 24 MiB into an 8 MiB workspace: %+v, %v (want the write to go through: the limit is enforced by eviction)", r, err)
			}
			// The eviction, as the pod's status shows it: a terminal phase.
			var evicted time.Time
			for evicted.IsZero() {
				pod, err := env.Client.CoreV1().Pods(env.Namespace).Get(ctx, sb.PodName(), metav1.GetOptions{})
				switch {
				case err != nil:
					t.Fatalf("watching for the eviction: %v", err)
				case pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded:
					// Succeeded when the image's command exits 0 on SIGTERM (API mode's does).
					evicted = time.Now()
					t.Logf("pod %s: %s %s %.120s", pod.Name, pod.Status.Phase, pod.Status.Reason, pod.Status.Message)
				}
				time.Sleep(100 * time.Millisecond)
			}
			var res drillResult
			select {
			case res = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("the running command had not returned 30 s after the eviction")
			}
			late := res.at.Sub(evicted)
			t.Logf("the running command returned %s after the eviction showed: %+v, %v", late.Round(time.Millisecond), res.r, res.err)
			if !errors.Is(res.err, podsandbox.ErrSandboxGone) {
				t.Errorf("the command running at the eviction: %+v, %v; want ErrSandboxGone", res.r, res.err)
			}
			if late > 2*time.Second {
				t.Errorf("the running command returned %s after the eviction showed, want ≤ 2 s", late)
			}
			// Every later call: typed at once.
			for name, call := range map[string]func() error{
				"Execute": func() error { _, err := sb.Execute(ctx, "echo after"); return err },
				"Read":    func() error { _, err := sb.Read(ctx, "fill", 0, 1); return err },
				"Write":   func() error { _, err := sb.Write(ctx, "x.txt", []byte("x")); return err },
			} {
				t0 := time.Now()
				err := call()
				if d := time.Since(t0); !errors.Is(err, podsandbox.ErrSandboxGone) || d > 2*time.Second {
					t.Errorf("%s after the eviction: %v after %s, want ErrSandboxGone within 2 s", name, err, d)
				}
			}
			if sb.IsAlive(ctx) {
				t.Error("IsAlive is true after the eviction")
			}
		})
	}
}

// TestDrillMemoryLimit: a command allocates past the container's memory limit. Where the kubelet
// makes the container one OOM group (cgroup v2), the kernel kills the whole container and the pod
// ends: the command running then, and every later call, fail with ErrSandboxGone, and IsAlive
// turns false. Where it does not (cgroup v1, as here), the kernel kills the greedy process alone:
// the call returns its exit code 137, and the sandbox goes on working. Either way the caller gets
// a typed answer within 2 minutes, never a raw transport error or a hang.
func TestDrillMemoryLimit(t *testing.T) {
	small := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("64Mi")},
	}
	for _, tc := range podDrillCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb := startSandbox(t, tc.image, append(tc.opts, podsandbox.WithResources(small))...)
			ctx := ctxT(t, 3*time.Minute)
			// /dev/zero has no newline: tail keeps all of it in memory, looking for the last line.
			t0 := time.Now()
			r, err := sb.Execute(ctx, "tail -n 1 /dev/zero", podsandbox.WithTimeout(2*time.Minute))
			t.Logf("Execute returned after %s: %+v, %v", time.Since(t0).Round(time.Millisecond), r, err)
			switch {
			case err == nil:
				if r.ExitCode != 137 || r.TimedOut {
					t.Fatalf("the greedy command: %+v; want exit 137 (SIGKILL by the OOM killer)", r)
				}
				if got := mustExec(t, sb, "echo alive"); got.Stdout != "alive\n" || !sb.IsAlive(ctx) {
					t.Errorf("after the OOM kill of one process: %+v, IsAlive %v; want the sandbox working", got, sb.IsAlive(ctx))
				}
			case errors.Is(err, podsandbox.ErrSandboxGone):
				t1 := time.Now()
				if _, err := sb.Execute(ctx, "echo after"); !errors.Is(err, podsandbox.ErrSandboxGone) || time.Since(t1) > 2*time.Second {
					t.Errorf("Execute after the container's OOM kill: %v after %s, want ErrSandboxGone at once", err, time.Since(t1))
				}
				if sb.IsAlive(ctx) {
					t.Error("IsAlive is true after the container's OOM kill")
				}
			default:
				t.Fatalf("the greedy command: %v; want its exit code 137, or ErrSandboxGone when the whole container was killed", err)
			}
		})
	}
}
