//go:build e2e

package podsandbox_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/podsandbox/podsandbox"
)

// processCases join the conformance table: background processes behave the same on every
// transport.
var processCases = []struct {
	name string
	run  func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, dir string)
}{
	{"background process: follow, exit code, env and dir, re-attach from another value, remove", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, dir string) {
		ctx := ctxT(t, 2*time.Minute)
		greeting := "hi 'there' \"you\" $HOME `id` ünï\nline two"
		cmd := "echo \"$GREETING\"; pwd; echo err >&2; sleep 1; printf 'tail'; exit 5"
		p, err := sb.StartProcess(ctx, cmd, podsandbox.WithExecEnv(map[string]string{"GREETING": greeting}), podsandbox.WithDir(dir))
		if err != nil {
			t.Fatal(err)
		}
		// Another value, from another Client, reaches the same process by id.
		other, err := testClient(t, restrictedConfig(t)).Attach(ctx, sb.Namespace(), sb.ID())
		if err != nil {
			t.Fatal(err)
		}
		q, err := other.Process(ctx, p.ID())
		if err != nil {
			t.Fatalf("re-attach: %v", err)
		}
		var out, errb bytes.Buffer
		st, next, err := q.Follow(ctx, podsandbox.Cursor{}, &out, &errb)
		if err != nil {
			t.Fatal(err)
		}
		want := greeting + "\n" + dir + "\ntail"
		if out.String() != want || errb.String() != "err\n" {
			t.Errorf("followed stdout %q stderr %q, want %q and %q", out.String(), errb.String(), want, "err\n")
		}
		if st.State != podsandbox.ProcessExited || st.ExitCode != 5 || st.Command != cmd || st.ID != p.ID() ||
			st.PGID <= 1 || st.StartedAt.IsZero() || st.EndedAt.Before(st.StartedAt) || !st.OutputDone ||
			st.StdoutBytes != int64(len(want)) || st.StderrBytes != 4 || st.StdoutTruncated || st.StderrTruncated {
			t.Errorf("status %+v", st)
		}
		if next != (podsandbox.Cursor{Stdout: int64(len(want)), Stderr: 4}) {
			t.Errorf("cursor %+v", next)
		}
		// Reading on from an offset.
		o, err := p.ReadOutput(ctx, podsandbox.Cursor{Stdout: int64(len(want)) - 4, Stderr: 4}, 3)
		if err != nil || string(o.Stdout) != "tai" || len(o.Stderr) != 0 || o.Next.Stdout != int64(len(want))-1 {
			t.Errorf("ReadOutput from an offset: %q %q %+v, %v", o.Stdout, o.Stderr, o.Next, err)
		}
		if st, err := p.Wait(ctx); err != nil || st.ExitCode != 5 {
			t.Errorf("Wait after exit: %+v, %v", st, err)
		}
		list, err := sb.Processes(ctx)
		if err != nil || !slices.ContainsFunc(list, func(s podsandbox.ProcessStatus) bool { return s.ID == p.ID() && s.ExitCode == 5 }) {
			t.Errorf("Processes() = %+v, %v: want %s in it", list, err, p.ID())
		}
		if err := q.Remove(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := sb.Process(ctx, p.ID()); !errors.Is(err, podsandbox.ErrNoProcess) {
			t.Errorf("Process after Remove: %v, want ErrNoProcess", err)
		}
		if err := p.Kill(ctx); !errors.Is(err, podsandbox.ErrNoProcess) {
			t.Errorf("Kill after Remove: %v, want ErrNoProcess", err)
		}
		if _, err := sb.Process(ctx, "../etc"); !errors.Is(err, podsandbox.ErrNoProcess) {
			t.Errorf("Process(../etc): %v, want ErrNoProcess", err)
		}
	}},
	{"background process: outlives its call, signal reaches its group, kill after exit", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, dir string) {
		ctx := ctxT(t, 2*time.Minute)
		p, err := sb.StartProcess(ctx, fmt.Sprintf(`trap 'echo got TERM; exit 3' TERM; sleep 300 & echo $! > %q/kid; echo ready; while :; do sleep 0.1; done`, dir))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Remove(context.Background()) })
		// The call that started it is over; it runs on. (The trap is set before the kid file is
		// written, so the signal below cannot come before it.)
		waitFor(t, "the process to start its child", 30*time.Second, func() bool { return mustExec(t, sb, fmt.Sprintf("cat %q/kid 2>/dev/null", dir)).Stdout != "" })
		if st, err := p.Status(ctx); err != nil || st.State != podsandbox.ProcessRunning || !st.EndedAt.IsZero() {
			t.Fatalf("Status = %+v, %v: want running", st, err)
		}
		if err := p.Signal(ctx, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		st, err := p.Wait(ctx)
		if err != nil || st.State != podsandbox.ProcessExited || st.ExitCode != 3 {
			t.Fatalf("Wait = %+v, %v: want exit 3 from the trap", st, err)
		}
		o, err := p.ReadOutput(ctx, podsandbox.Cursor{}, 1000)
		if err != nil || string(o.Stdout) != "ready\ngot TERM\n" {
			t.Errorf("output %q, %v", o.Stdout, err)
		}
		assertDead(t, sb, dir+"/kid") // the group's other member got the signal too
		if err := p.Kill(ctx); !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("Kill after exit: %v, want os.ErrProcessDone", err)
		}
		// Killed outright: 128+9.
		k, err := sb.StartProcess(ctx, "sleep 300")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k.Remove(context.Background()) })
		if err := k.Kill(ctx); err != nil {
			t.Fatal(err)
		}
		if st, err := k.Wait(ctx); err != nil || st.ExitCode != 137 {
			t.Errorf("Wait after Kill = %+v, %v: want 137", st, err)
		}
		// A supervisor killed outright leaves no exit code: the process is lost, and Remove still
		// ends the command it left behind.
		l, err := sb.StartProcess(ctx, "sleep 300")
		if err != nil {
			t.Fatal(err)
		}
		st, err = l.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, sb, `kill -9 "$(cat /tmp/.psbx-proc/$ID/spid)"; echo "$PG" > lost.pid`, podsandbox.WithExecEnv(map[string]string{"ID": l.ID(), "PG": fmt.Sprint(st.PGID)}), podsandbox.WithDir(dir))
		if st, err := l.Wait(ctx); err != nil || st.State != podsandbox.ProcessLost {
			t.Errorf("Wait after the supervisor's death = %+v, %v: want lost", st, err)
		}
		if err := l.Remove(ctx); err != nil {
			t.Fatal(err)
		}
		assertDead(t, sb, dir+"/lost.pid")
	}},
	{"background process: output is kept byte for byte up to its limit", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, dir string) {
		ctx := ctxT(t, 2*time.Minute)
		// Every byte value, then 3 MB of random bytes: Follow hands them over unchanged.
		f := dir + "/blob"
		mustExec(t, sb, fmt.Sprintf(`i=0; while [ $i -lt 256 ]; do printf "\\$(printf %%o $i)"; i=$((i+1)); done > %q; head -c 3000000 /dev/urandom >> %q`, f, f))
		blob, err := sb.ReadBytes(ctx, f)
		if err != nil || len(blob) != 3000256 {
			t.Fatalf("blob: %d bytes, %v", len(blob), err)
		}
		p, err := sb.StartProcess(ctx, `cat "$F"; echo done >&2`, podsandbox.WithExecEnv(map[string]string{"F": f}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Remove(context.Background()) })
		var out, errb bytes.Buffer
		st, _, err := p.Follow(ctx, podsandbox.Cursor{}, &out, &errb)
		if err != nil || st.ExitCode != 0 || st.StdoutTruncated || errb.String() != "done\n" {
			t.Fatalf("Follow: %+v, stderr %q, %v", st, errb.String(), err)
		}
		if sha256.Sum256(out.Bytes()) != sha256.Sum256(blob) {
			t.Errorf("followed %d bytes that differ from the file's %d", out.Len(), len(blob))
		}
		// Over the limit: the first bytes are kept (the limit is rounded up to the shell's ulimit
		// block, 512 or 1024 bytes), the rest is read and dropped, and the command is not hurt.
		c, err := sb.StartProcess(ctx, `head -c 100000 /dev/zero | tr '\0' a; echo ok >&2; exit 0`, podsandbox.WithOutputLimit(1000))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Remove(context.Background()) })
		st, err = c.Wait(ctx)
		if err != nil || st.ExitCode != 0 || !st.StdoutTruncated || st.StderrTruncated || st.StdoutBytes < 1000 || st.StdoutBytes > 2048 || st.StderrBytes != 3 {
			t.Fatalf("capped: %+v, %v", st, err)
		}
		o, err := c.ReadOutput(ctx, podsandbox.Cursor{}, 1<<20)
		if err != nil || int64(len(o.Stdout)) != st.StdoutBytes || strings.Trim(string(o.Stdout), "a") != "" {
			t.Errorf("capped output: %d bytes (%q...), %v", len(o.Stdout), o.Stdout[:min(10, len(o.Stdout))], err)
		}
	}},
	{"background process: stdin written in pieces, then closed", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, dir string) {
		ctx := ctxT(t, 2*time.Minute)
		p, err := sb.StartProcess(ctx, `while IFS= read -r l; do echo "got $l"; done; echo eof`, podsandbox.WithOpenStdin())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Remove(context.WithoutCancel(ctx)) })
		// The first piece is read and answered while stdin stays open.
		if err := p.WriteStdin(ctx, strings.NewReader("one 'q' $x\n")); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		at := podsandbox.Cursor{}
		for !strings.Contains(out.String(), "got one 'q' $x\n") {
			o, err := p.ReadOutput(ctx, at, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			out.Write(o.Stdout)
			at = o.Next
			if o.Status.State != podsandbox.ProcessRunning {
				t.Fatalf("the process ended before its stdin was closed: %+v, output %q", o.Status, out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		big := strings.Repeat("x", 100<<10) + "\nlast" // more than a pipe holds, and no final newline
		if err := p.WriteStdin(ctx, strings.NewReader(big)); err != nil {
			t.Fatal(err)
		}
		if err := p.CloseStdin(ctx); err != nil {
			t.Fatal(err)
		}
		st, err := p.Wait(ctx)
		if err != nil || st.State != podsandbox.ProcessExited || st.ExitCode != 0 {
			t.Fatalf("after CloseStdin: %+v, %v", st, err)
		}
		o, err := p.ReadOutput(ctx, podsandbox.Cursor{}, 1<<20)
		if want := "got one 'q' $x\ngot " + strings.Repeat("x", 100<<10) + "\neof\n"; err != nil || string(o.Stdout) != want {
			t.Errorf("stdout %d bytes (%v), want %d: the line without a newline is not read by read -r", len(o.Stdout), err, len(want))
		}
		if err := p.WriteStdin(ctx, strings.NewReader("late")); !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("WriteStdin after exit: %v, want os.ErrProcessDone", err)
		}
		// Without WithOpenStdin a process reads /dev/null, and WriteStdin says why it cannot.
		q, err := sb.StartProcess(ctx, "cat; sleep 30")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = q.Remove(context.WithoutCancel(ctx)) })
		if err := q.WriteStdin(ctx, strings.NewReader("x")); !errors.Is(err, podsandbox.ErrInvalidArgument) {
			t.Errorf("WriteStdin without WithOpenStdin: %v", err)
		}
		if _, err := sb.Execute(ctx, "true", podsandbox.WithOpenStdin()); !errors.Is(err, podsandbox.ErrInvalidArgument) {
			t.Errorf("Execute WithOpenStdin: %v", err)
		}
	}},
	{"plain Execute leaves a detached child running", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, dir string) {
		// (Debian's busybox has no nohup applet; the python image's coreutils nohup works too.)
		for _, how := range []string{"sleep 300 >/dev/null 2>&1 &", "setsid sleep 300 >/dev/null 2>&1 < /dev/null &", "if command -v nohup >/dev/null; then nohup sleep 300 >/dev/null 2>&1 & else sleep 300 >/dev/null 2>&1 & fi;"} {
			r := mustExec(t, sb, how+` echo $! > kid; echo started`, podsandbox.WithDir(dir))
			if r.Stdout != "started\n" {
				t.Fatalf("%s: %+v", how, r)
			}
			// Still there after the call, and a while later.
			for range 2 {
				time.Sleep(500 * time.Millisecond)
				alive := mustExec(t, sb, `p=$(cat kid); s=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' /proc/$p/status 2>/dev/null); [ -n "$s" ] && [ "$s" != Z ] && echo alive; kill -0 $p 2>/dev/null || true`, podsandbox.WithDir(dir))
				if alive.Stdout != "alive\n" {
					t.Fatalf("%q: the child is gone after the call returned: %+v %+v", how, alive, mustExec(t, sb, "cat kid; ps -o pid,ppid,pgid,stat,args 2>&1 || ps", podsandbox.WithDir(dir)))
				}
			}
			mustExec(t, sb, `kill -9 $(cat kid)`, podsandbox.WithDir(dir))
		}
	}},
	{"Execute WithReattach and WithRequestID: same results, once per id", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, dir string) {
		ctx := ctxT(t, 2*time.Minute)
		// Each command names dir, to tell its process from the other cases' (they run in parallel).
		tag := fmt.Sprintf(": %q; ", dir)
		r, err := sb.Execute(ctx, tag+"echo out; echo err >&2; printf '%s' \"$V\"; exit 3", podsandbox.WithReattach(),
			podsandbox.WithExecEnv(map[string]string{"V": "x y"}), podsandbox.WithDir(dir))
		if err != nil || r.Stdout != "out\nx y" || r.Stderr != "err\n" || r.ExitCode != 3 || r.Truncated || r.TimedOut ||
			len(r.Output) != len(r.Stdout)+len(r.Stderr) {
			t.Errorf("WithReattach: %+v, %v", r, err)
		}
		r, err = sb.Execute(ctx, tag+"head -c 100 /dev/zero | tr '\\0' a", podsandbox.WithReattach(), podsandbox.WithOutputLimit(10))
		if want := "aaaaa" + fmt.Sprintf(podsandbox.OmittedMarker, 90) + "aaaaa"; err != nil || r.Stdout != want || !r.Truncated || r.StdoutBytes != 100 {
			t.Errorf("WithReattach, output limit 10: %+v, %v", r, err)
		}
		start := time.Now()
		r, err = sb.Execute(ctx, tag+fmt.Sprintf("echo started; sleep 300 & echo $! > %q/kid; sleep 302", dir), podsandbox.WithReattach(), podsandbox.WithTimeout(4*time.Second))
		if err != nil || !r.TimedOut || r.ExitCode != podsandbox.TimeoutExitCode || r.Stdout != "started\n" || time.Since(start) > 20*time.Second {
			t.Errorf("WithReattach, timeout: %+v, %v after %s", r, err, time.Since(start))
		}
		assertDead(t, sb, dir+"/kid")
		list, err := sb.Processes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range list {
			if strings.HasPrefix(p.Command, tag) {
				t.Errorf("process %+v is listed: a call WithReattach is not a background process", p)
			}
		}
		// A request id: the second call returns the first's result without running it again.
		rid := fmt.Sprintf("req-%d", time.Now().UnixNano())
		cmd := "echo run >> runs; echo hi"
		for i := range 2 {
			r, err := sb.Execute(ctx, cmd, podsandbox.WithRequestID(rid), podsandbox.WithDir(dir))
			if err != nil || r.Stdout != "hi\n" || r.ExitCode != 0 {
				t.Errorf("call %d with request id: %+v, %v", i, r, err)
			}
		}
		if r := mustExec(t, sb, "cat runs", podsandbox.WithDir(dir)); r.Stdout != "run\n" {
			t.Errorf("the command ran %d times for one request id", strings.Count(r.Stdout, "run"))
		}
		if _, err := sb.Execute(ctx, "echo other", podsandbox.WithRequestID(rid)); !errors.Is(err, podsandbox.ErrInvalidArgument) {
			t.Errorf("another command with a used request id: %v, want ErrInvalidArgument", err)
		}
		for _, bad := range []podsandbox.ExecOption{podsandbox.WithRequestID("../x"), podsandbox.WithStdin(strings.NewReader("x"))} {
			if _, err := sb.Execute(ctx, "true", podsandbox.WithReattach(), bad); !errors.Is(err, podsandbox.ErrInvalidArgument) {
				t.Errorf("bad option: %v, want ErrInvalidArgument", err)
			}
		}
		p, err := sb.Process(ctx, rid)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Remove(ctx); err != nil {
			t.Fatal(err)
		}
	}},
}
