//go:build e2e

package podsandbox_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/internal/e2e"
)

// transports are the ways a KubernetesPodSandbox reaches its pod; every behaviour below must give
// the same result on each.
var transports = []transportCase{
	{"http-podip", e2e.ImageServer, []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeHTTP), podsandbox.WithReach(podsandbox.ReachPodIP)}},
	{"http-proxy", e2e.ImageServer, []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeHTTP), podsandbox.WithReach(podsandbox.ReachProxy)}},
	{"http-portforward", e2e.ImageServer, []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeHTTP), podsandbox.WithReach(podsandbox.ReachPortForward)}},
	{"api-busybox", e2e.ImageBusybox, []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeAPI)}},
	{"api-python", e2e.ImagePython, []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeAPI)}},
	// API mode with exec channels: one long-lived pods/exec carries the calls.
	{"api-channel-busybox", e2e.ImageBusybox, []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeAPI), podsandbox.WithExecChannels(4)}},
	{"api-channel-python", e2e.ImagePython, []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeAPI), podsandbox.WithExecChannels(4)}},
	// API mode with the injected agent (WithAgent, added by options): HTTP/2 over one pods/exec.
	{"api-agent-busybox", e2e.ImageBusybox, []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeAPI)}},
	{"api-agent-python", e2e.ImagePython, []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeAPI)}},
}

// gvisorTransports are both modes under the gvisor RuntimeClass (make cluster-up installs it
// unless GVISOR=0). Only TestConformance runs them: the full table, and a check of the kernel.
var gvisorTransports = []transportCase{
	{"http-proxy-gvisor", e2e.ImageServer, []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeHTTP), podsandbox.WithReach(podsandbox.ReachProxy), podsandbox.WithRuntimeClass(e2e.GVisorClass)}},
	{"api-busybox-gvisor", e2e.ImageBusybox, []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeAPI), podsandbox.WithRuntimeClass(e2e.GVisorClass)}},
}

type transportCase struct {
	name  string
	image string
	opts  []podsandbox.Option
}

// via is the path the case's calls must take ("": not checked).
func (tr transportCase) via() string {
	switch {
	case strings.HasPrefix(tr.name, "http-"):
		return podsandbox.ViaServer
	case strings.HasPrefix(tr.name, "api-agent-"):
		return podsandbox.ViaAgent
	case strings.HasPrefix(tr.name, "api-channel-"):
		return "" // by design, a call with streaming stdin takes a pods/exec of its own
	}
	return podsandbox.ViaExec
}

// options are the case's options, plus WithAgent for the agent cases (the agent is built by
// TestMain, after this table is made).
func (tr transportCase) options() []podsandbox.Option {
	if strings.HasPrefix(tr.name, "api-agent-") {
		return append(slices.Clone(tr.opts), podsandbox.WithAgent(testAgent))
	}
	return tr.opts
}

// startSandbox starts a sandbox as the least-privilege ServiceAccount of deploy/rbac.yaml and stops
// it when the test ends.
func startSandbox(t *testing.T, image string, opts ...podsandbox.Option) *podsandbox.KubernetesPodSandbox {
	t.Helper()
	sb := startSandboxWith(t, testClient(t, restrictedConfig(t)), image, opts...)
	e2e.DumpOnFailure(t, e2e.Env(t), sb.PodName()) // cleanups run last-in first-out: dump, then stop
	return sb
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustExec(t *testing.T, sb podsandbox.Sandbox, cmd string, opts ...podsandbox.ExecOption) *podsandbox.ExecuteResponse {
	t.Helper()
	r, err := sb.Execute(ctxT(t, 60*time.Second), cmd, opts...)
	if err != nil {
		t.Fatalf("Execute(%q): %v", cmd, err)
	}
	return r
}

func mustWrite(t *testing.T, sb podsandbox.Sandbox, p string, data []byte) {
	t.Helper()
	if _, err := sb.Write(ctxT(t, 60*time.Second), p, data); err != nil {
		t.Fatalf("Write(%q): %v", p, err)
	}
}

// conformance is the behaviour table. Each case gets its own directory under the work dir.
var conformance = []struct {
	name string
	run  func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, dir string)
}{
	{"exit codes", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, _ string) {
		for cmd, want := range map[string]int{"true": 0, "exit 1": 1, "exit 2": 2, "no-such-command-xyz": 127, "kill -9 $$": 137, "exit 255": 255, "exit 3": 3} {
			if r := mustExec(t, sb, cmd); r.ExitCode != want {
				t.Errorf("%q: exit code %d, want %d (output %q)", cmd, r.ExitCode, want, r.Output)
			}
		}
	}},
	{"stdout stderr and order", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, _ string) {
		r := mustExec(t, sb, "echo out; sleep 0.2; echo err >&2; sleep 0.2; echo out2")
		if r.Stdout != "out\nout2\n" || r.Stderr != "err\n" || r.Output != "out\nerr\nout2\n" || r.ExitCode != 0 || r.Truncated {
			t.Errorf("got %+v", r)
		}
	}},
	{"output with no trailing newline and empty output", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, _ string) {
		if r := mustExec(t, sb, "printf abc"); r.Output != "abc" {
			t.Errorf("got %q", r.Output)
		}
		if r := mustExec(t, sb, "true"); r.Output != "" || r.Stdout != "" || r.Stderr != "" {
			t.Errorf("got %+v", r)
		}
	}},
	{"output cap keeps head and tail, counts every byte, keeps the full output in a file", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, _ string) {
		ctx := t.Context()
		var seq strings.Builder // what seq 1 30000 prints: 168 894 bytes
		for i := 1; i <= 30000; i++ {
			fmt.Fprintf(&seq, "%d\n", i)
		}
		full := seq.String()
		omitted := fmt.Sprintf(podsandbox.OmittedMarker, len(full)-podsandbox.DefaultOutputLimit)
		want := full[:podsandbox.DefaultOutputLimit/2] + omitted + full[len(full)-podsandbox.DefaultOutputLimit/2:]
		r := mustExec(t, sb, "seq 1 30000")
		if r.Output != want || r.Stdout != want || r.Stderr != "" || !r.Truncated || !r.StdoutTruncated || r.StderrTruncated ||
			r.StdoutBytes != int64(len(full)) || r.StderrBytes != 0 || r.ExitCode != 0 {
			t.Errorf("len %d (want %d) truncated %v/%v/%v bytes %d/%d exit %d", len(r.Output), len(want), r.Truncated,
				r.StdoutTruncated, r.StderrTruncated, r.StdoutBytes, r.StderrBytes, r.ExitCode)
		}
		// The full output is in the sandbox, for Read and GrepRaw.
		if !strings.HasPrefix(r.OutputFile, podsandbox.OutputDir+"/") {
			t.Fatalf("output file %q, want one under %s", r.OutputFile, podsandbox.OutputDir)
		}
		if data, err := sb.ReadBytes(ctx, r.OutputFile); err != nil || string(data) != full {
			t.Errorf("output file: %d bytes (%v), want the %d of the output", len(data), err, len(full))
		}
		if m, err := sb.GrepRaw(ctx, "^12345$", podsandbox.GrepOptions{Path: r.OutputFile}); err != nil || len(m) != 1 || m[0].LineNumber != 12345 {
			t.Errorf("grep in the output file: %+v, %v", m, err)
		}
		// WithOutputFileLimit bounds the file; below zero there is none.
		if r := mustExec(t, sb, "seq 1 30000", podsandbox.WithOutputFileLimit(1000)); r.OutputFile == "" {
			t.Errorf("no output file with a limit of 1000")
		} else if data, err := sb.ReadBytes(ctx, r.OutputFile); err != nil || string(data) != full[:1000] {
			t.Errorf("output file with a limit of 1000: %d bytes (%v)", len(data), err)
		}
		if r := mustExec(t, sb, "seq 1 30000", podsandbox.WithOutputFileLimit(-1)); !r.Truncated || r.OutputFile != "" {
			t.Errorf("WithOutputFileLimit(-1): truncated %v file %q", r.Truncated, r.OutputFile)
		}
		// A caller that streams gets every byte, and no file.
		var all bytes.Buffer
		r = mustExec(t, sb, "head -c 300000 /dev/zero | tr '\\0' y", podsandbox.WithOutputLimit(10), podsandbox.WithStdout(&all))
		if want := "yyyyy" + fmt.Sprintf(podsandbox.OmittedMarker, 299990) + "yyyyy"; r.Output != want || !r.Truncated ||
			all.Len() != 300000 || r.StdoutBytes != 300000 || r.OutputFile != "" {
			t.Errorf("output %q truncated %v streamed %d counted %d file %q", r.Output, r.Truncated, all.Len(), r.StdoutBytes, r.OutputFile)
		}
		var errs bytes.Buffer
		r = mustExec(t, sb, "head -c 200000 /dev/zero | tr '\\0' e >&2; echo out", podsandbox.WithOutputLimit(10), podsandbox.WithStderr(&errs))
		if !r.Truncated || !r.StderrTruncated || r.StdoutTruncated || r.Stdout != "out\n" || r.StderrBytes != 200000 ||
			errs.Len() != 200000 || strings.Trim(errs.String(), "e") != "" {
			t.Errorf("stderr: truncated %v/%v/%v stdout %q counted %d streamed %d", r.Truncated, r.StdoutTruncated, r.StderrTruncated, r.Stdout, r.StderrBytes, errs.Len())
		}
		if r := mustExec(t, sb, "head -c 100000 /dev/zero | tr '\\0' z"); r.Truncated || len(r.Output) != 100000 || r.OutputFile != "" {
			t.Errorf("exactly at the limit: truncated %v len %d file %q", r.Truncated, len(r.Output), r.OutputFile)
		}
	}},
	{"a terminal only when asked: its size, input typed in, resized while the command runs", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, _ string) {
		ctx := ctxT(t, 2*time.Minute)
		if r := mustExec(t, sb, "[ -t 0 ] || [ -t 1 ] || [ -t 2 ] || echo no-tty"); r.Stdout != "no-tty\n" {
			t.Errorf("a plain call has a terminal: %q", r.Stdout)
		}
		size := podsandbox.WithPTY(podsandbox.TerminalSize{Rows: 24, Cols: 80})
		r := mustExec(t, sb, "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty; stty size; echo err >&2; exit 3", size)
		if r.Stdout != "all-tty\r\n24 80\r\nerr\r\n" || r.Stderr != "" || r.Output != r.Stdout || r.ExitCode != 3 {
			t.Errorf("on a terminal: %+v", r)
		}
		// Input is typed in and echoed; its end is ^D (twice: the last line has no newline).
		r = mustExec(t, sb, `IFS= read -r l; echo "got:$l"; cat; echo cat-ended`, size, podsandbox.WithStdin(strings.NewReader("hello\nrest")))
		for _, want := range []string{"got:hello\r\n", "rest", "cat-ended\r\n"} {
			if !strings.Contains(r.Stdout, want) || r.ExitCode != 0 {
				t.Errorf("input: %q (exit %d) lacks %q", r.Stdout, r.ExitCode, want)
			}
		}
		// A resize sent once the command has printed its first size reaches it.
		resize := make(chan podsandbox.TerminalSize, 1)
		var once sync.Once
		seen := &lockedWriter{w: &notifyWriter{on: "24 80", f: func() {
			once.Do(func() { resize <- podsandbox.TerminalSize{Rows: 40, Cols: 100} })
		}}}
		r, err := sb.Execute(ctx, `stty size; i=0; while [ "$(stty size)" = "24 80" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; stty size`,
			size, podsandbox.WithTerminalResize(resize), podsandbox.WithStdout(seen))
		if err != nil || !strings.HasSuffix(r.Stdout, "\r\n40 100\r\n") {
			t.Errorf("resize: %+v, %v", r, err)
		}
		for name, opts := range map[string][]podsandbox.ExecOption{
			"a resize without a terminal": {podsandbox.WithTerminalResize(resize)},
			"a terminal of no size":       {podsandbox.WithPTY(podsandbox.TerminalSize{})},
			"a terminal WithReattach":     {size, podsandbox.WithReattach()},
		} {
			if _, err := sb.Execute(ctx, "true", opts...); !errors.Is(err, podsandbox.ErrInvalidArgument) {
				t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
			}
		}
		mustExec(t, sb, "true") // the last call takes the transport's own path (see Via)
	}},
	{"timeout kills the process group and keeps partial output", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, dir string) {
		start := time.Now()
		r := mustExec(t, sb, fmt.Sprintf("echo started; sleep 300 & echo $! > %q/kid; sh -c 'sleep 301' & echo $! >> %q/kid; sleep 302", dir, dir), podsandbox.WithTimeout(2*time.Second))
		if el := time.Since(start); el > 15*time.Second {
			t.Errorf("timeout took %s", el)
		}
		if !r.TimedOut || r.ExitCode != podsandbox.TimeoutExitCode || r.Output != "started\n" {
			t.Errorf("got %+v", r)
		}
		assertDead(t, sb, dir+"/kid")
	}},
	{"no-output timeout kills a silent command, not a talkative one", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, dir string) {
		start := time.Now()
		r := mustExec(t, sb, fmt.Sprintf("echo started; sleep 300 & echo $! > %q/quiet; sleep 304", dir),
			podsandbox.WithNoOutputTimeout(1500*time.Millisecond), podsandbox.WithTimeout(2*time.Minute))
		if el := time.Since(start); el > 15*time.Second {
			t.Errorf("the no-output timeout took %s", el)
		}
		if !r.TimedOut || !r.NoOutputTimedOut || r.ExitCode != podsandbox.TimeoutExitCode || r.Stdout != "started\n" {
			t.Errorf("silent: got %+v, want exit 124, TimedOut and NoOutputTimedOut, and the output before it", r)
		}
		assertDead(t, sb, dir+"/quiet")
		// Output every 0.2 s keeps a 5 s no-output timeout from firing; the wall-clock one is
		// still told apart.
		r = mustExec(t, sb, "for i in 1 2 3 4 5 6 7 8; do echo $i; sleep 0.2; done", podsandbox.WithNoOutputTimeout(5*time.Second))
		if r.TimedOut || r.ExitCode != 0 || r.Stdout != "1\n2\n3\n4\n5\n6\n7\n8\n" {
			t.Errorf("talkative: got %+v", r)
		}
		r = mustExec(t, sb, "while :; do echo tick; sleep 0.2; done", podsandbox.WithNoOutputTimeout(5*time.Second), podsandbox.WithTimeout(2*time.Second))
		if !r.TimedOut || r.NoOutputTimedOut || r.ExitCode != podsandbox.TimeoutExitCode {
			t.Errorf("wall clock: got TimedOut %v NoOutputTimedOut %v exit %d, want the wall-clock timeout", r.TimedOut, r.NoOutputTimedOut, r.ExitCode)
		}
	}},
	{"cancel kills the remote process", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, dir string) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(1500*time.Millisecond, cancel)
		_, err := sb.Execute(ctx, fmt.Sprintf("sleep 300 & echo $! > %q/kid; sleep 303", dir))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		assertDead(t, sb, dir+"/kid")
	}},
	{"background child holding stdout does not hang", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, _ string) {
		start := time.Now()
		r := mustExec(t, sb, "sleep 30 & echo done")
		if el := time.Since(start); el > 10*time.Second {
			t.Errorf("took %s", el)
		}
		if r.ExitCode != 0 || r.Stdout != "done\n" {
			t.Errorf("got %+v", r)
		}
	}},
	{"stdin env and dir", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, dir string) {
		if r := mustExec(t, sb, "cat; echo", podsandbox.WithStdin(strings.NewReader("from stdin"))); r.Stdout != "from stdin\n" {
			t.Errorf("stdin: %q", r.Stdout)
		}
		v := "a b'c\"$(id)\n"
		if r := mustExec(t, sb, `printf %s "$FOO"`, podsandbox.WithExecEnv(map[string]string{"FOO": v})); r.Stdout != v {
			t.Errorf("env: %q", r.Stdout)
		}
		mustExec(t, sb, fmt.Sprintf("mkdir -p %q/sub", dir))
		if r := mustExec(t, sb, "pwd", podsandbox.WithDir(strings.TrimPrefix(dir, sb.WorkDir()+"/")+"/sub")); r.Stdout != dir+"/sub\n" {
			t.Errorf("dir: %q", r.Stdout)
		}
		if r := mustExec(t, sb, "pwd"); r.Stdout != sb.WorkDir()+"\n" {
			t.Errorf("default dir: %q", r.Stdout)
		}
		if r := mustExec(t, sb, `echo "$HOME"; touch "$HOME/.x" && echo writable`); r.Stdout != sb.WorkDir()+"\nwritable\n" {
			t.Errorf("HOME: %q", r.Stdout)
		}
	}},
	{"binary files round trip at any size", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, dir string) {
		all := make([]byte, 256*4)
		for i := range all {
			all[i] = byte(i)
		}
		big := make([]byte, 5<<20+7)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range big {
			big[i] = byte(rng.Uint32())
		}
		for name, data := range map[string][]byte{"bytes.bin": all, "big.bin": big, "empty.bin": {}, "nl.txt": []byte("no newline at end")} {
			p := dir + "/" + name
			mustWrite(t, sb, p, data)
			got, err := sb.ReadBytes(ctxT(t, 60*time.Second), p)
			if err != nil {
				t.Fatalf("ReadBytes(%s): %v", name, err)
			}
			if sha256.Sum256(got) != sha256.Sum256(data) {
				t.Errorf("%s: %d bytes back, want %d, content differs", name, len(got), len(data))
			}
		}
		if r := mustExec(t, sb, fmt.Sprintf("wc -c < %q/big.bin", dir)); strings.TrimSpace(r.Stdout) != fmt.Sprint(len(big)) {
			t.Errorf("size in the pod: %q", r.Stdout)
		}
	}},
	{"awkward paths", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, dir string) {
		for _, name := range []string{"with space/a b.txt", "quo'te\"s/x.txt", "new\nline/y.txt", "ünïcødé/日本.txt", "-dash/--x.txt", "$(id)/`id`.txt"} {
			p := dir + "/" + name
			mustWrite(t, sb, p, []byte("content of "+name))
			got, err := sb.ReadBytes(ctxT(t, 30*time.Second), p)
			if err != nil || string(got) != "content of "+name {
				t.Errorf("%q: %q, %v", name, got, err)
			}
			if ok, err := sb.Exists(ctxT(t, 30*time.Second), p); !ok || err != nil {
				t.Errorf("Exists(%q) = %v, %v", name, ok, err)
			}
		}
		rel := strings.TrimPrefix(dir, sb.WorkDir()+"/") + "/relative.txt"
		mustWrite(t, sb, rel, []byte("r"))
		if ok, _ := sb.Exists(ctxT(t, 30*time.Second), dir+"/relative.txt"); !ok {
			t.Errorf("relative path did not resolve against the work dir")
		}
	}},
	{"read numbering offset and errors", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, dir string) {
		p := dir + "/lines.txt"
		mustWrite(t, sb, p, []byte("a\nb\nc\nd\ne\n"))
		ctx := ctxT(t, 60*time.Second)
		for _, c := range []struct {
			off, lim int
			want     string
		}{
			{0, 0, "     1\ta\n     2\tb\n     3\tc\n     4\td\n     5\te"},
			{1, 2, "     2\tb\n     3\tc\n\n... (2 more lines)"},
			{4, 10, "     5\te"},
		} {
			got, err := sb.Read(ctx, p, c.off, c.lim)
			if err != nil || got != c.want {
				t.Errorf("Read(%d,%d) = %q, %v; want %q", c.off, c.lim, got, err, c.want)
			}
		}
		if text, data, err := sb.ReadWithBytes(ctx, p, 1, 2); err != nil || text != "     2\tb\n     3\tc\n\n... (2 more lines)" || string(data) != "a\nb\nc\nd\ne\n" {
			t.Errorf("ReadWithBytes = %q, %q, %v", text, data, err)
		}
		var oe *podsandbox.OffsetError
		if _, err := sb.Read(ctx, p, 5, 10); !errors.As(err, &oe) || oe.Lines != 5 || err.Error() != "Offset 5 exceeds file length (5 lines)" {
			t.Errorf("past end: %v", err)
		}
		if _, err := sb.Read(ctx, dir+"/missing", 0, 0); !errors.Is(err, podsandbox.ErrNotFound) {
			t.Errorf("missing: %v", err)
		}
		if _, err := sb.Read(ctx, dir, 0, 0); !errors.Is(err, podsandbox.ErrIsDirectory) {
			t.Errorf("dir: %v", err)
		}
		mustWrite(t, sb, dir+"/empty.txt", nil)
		if got, err := sb.Read(ctx, dir+"/empty.txt", 0, 0); got != "" || err != nil {
			t.Errorf("empty: %q, %v", got, err)
		}
	}},
	{"edit rules", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, dir string) {
		ctx := ctxT(t, 60*time.Second)
		p := dir + "/e.txt"
		mustWrite(t, sb, p, []byte("one two two three\n"))
		if r, err := sb.Edit(ctx, p, "one", "1", false); err != nil || r.Occurrences != 1 {
			t.Errorf("single: %+v %v", r, err)
		}
		var ee *podsandbox.EditError
		if _, err := sb.Edit(ctx, p, "two", "2", false); !errors.As(err, &ee) || ee.Count != 2 ||
			err.Error() != "String 'two' found 2 times. Use replace_all=True to replace all, or provide more context." {
			t.Errorf("ambiguous: %v", err)
		}
		if r, err := sb.Edit(ctx, p, "two", "2", true); err != nil || r.Occurrences != 2 {
			t.Errorf("replace all: %+v %v", r, err)
		}
		if _, err := sb.Edit(ctx, p, "nine", "9", false); !errors.Is(err, podsandbox.ErrStringNotFound) || err.Error() != "String 'nine' not found in file" {
			t.Errorf("absent: %v", err)
		}
		if got, _ := sb.ReadBytes(ctx, p); string(got) != "1 2 2 three\n" {
			t.Errorf("content %q", got)
		}
		mustWrite(t, sb, dir+"/empty", nil)
		if _, err := sb.Edit(ctx, dir+"/empty", "x", "y", false); !errors.Is(err, podsandbox.ErrStringNotFound) {
			t.Errorf("empty file must not be 'not found': %v", err)
		}
		if _, err := sb.Edit(ctx, dir+"/missing", "x", "y", false); !errors.Is(err, podsandbox.ErrNotFound) {
			t.Errorf("missing file: %v", err)
		}
		if _, err := sb.Edit(ctx, p, "", "y", false); !errors.Is(err, podsandbox.ErrInvalidArgument) {
			t.Errorf("empty old: %v", err)
		}
		big := bytes.Repeat([]byte("0123456789abcdef\n"), 200_000) // 3.4 MB: never cut
		big = append(big, []byte("TAIL")...)
		mustWrite(t, sb, dir+"/big", big)
		if _, err := sb.Edit(ctx, dir+"/big", "TAIL", "END", false); err != nil {
			t.Fatalf("big edit: %v", err)
		}
		got, _ := sb.ReadBytes(ctx, dir+"/big")
		if len(got) != len(big)-1 || !bytes.HasSuffix(got, []byte("END")) {
			t.Errorf("big file after edit: %d bytes", len(got))
		}
	}},
	{"ls", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, dir string) {
		ctx := ctxT(t, 60*time.Second)
		mustWrite(t, sb, dir+"/b.txt", []byte("12345"))
		mustWrite(t, sb, dir+"/a dir/x", nil)
		mustWrite(t, sb, dir+"/.hidden", []byte("h"))
		mustWrite(t, sb, dir+"/zdir/y", nil)
		got, err := sb.LsInfo(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range got {
			names = append(names, fmt.Sprintf("%s|%v|%d", f.Name, f.IsDir, map[bool]int64{true: -1, false: f.Size}[f.IsDir]))
			if f.Path != dir+"/"+f.Name || f.ModifiedAt.IsZero() || time.Since(f.ModifiedAt) > time.Hour {
				t.Errorf("row %+v", f)
			}
		}
		if want := "a dir|true|-1 zdir|true|-1 .hidden|false|1 b.txt|false|5"; strings.Join(names, " ") != want {
			t.Errorf("ls = %s, want %s", strings.Join(names, " "), want)
		}
		if _, err := sb.LsInfo(ctx, dir+"/nope"); !errors.Is(err, podsandbox.ErrNotFound) {
			t.Errorf("missing: %v", err)
		}
		if _, err := sb.LsInfo(ctx, dir+"/b.txt"); !errors.Is(err, podsandbox.ErrNotDirectory) {
			t.Errorf("file: %v", err)
		}
	}},
	{"glob", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, dir string) {
		ctx := ctxT(t, 60*time.Second)
		for _, f := range []string{"g/a.go", "g/sub/b.go", "g/sub/deep/c.go", "g/d.txt", "g/locked/e.go", "g/.h/f.go"} {
			mustWrite(t, sb, dir+"/"+f, []byte("x"))
		}
		mustExec(t, sb, fmt.Sprintf("chmod 000 %q/g/locked", dir))
		t.Cleanup(func() { mustExec(t, sb, fmt.Sprintf("chmod 755 %q/g/locked", dir)) })
		paths := func(pattern, root string) string {
			fs, err := sb.GlobInfo(ctx, pattern, root)
			if err != nil {
				t.Fatalf("GlobInfo(%q, %q): %v", pattern, root, err)
			}
			var ps []string
			for _, f := range fs {
				ps = append(ps, strings.TrimPrefix(f.Path, dir+"/g/"))
			}
			return strings.Join(ps, " ")
		}
		for _, c := range []struct{ pattern, want string }{
			{"**/*.go", ".h/f.go a.go sub/b.go sub/deep/c.go"},
			{"*.go", ".h/f.go a.go sub/b.go sub/deep/c.go"},
			{"sub/*.go", "sub/b.go"},
			{"sub/**/*.go", "sub/b.go sub/deep/c.go"},
			{"*.txt", "d.txt"},
			{"*.rs", ""},
		} {
			if got := paths(c.pattern, dir+"/g"); got != c.want {
				t.Errorf("glob %q = %q, want %q", c.pattern, got, c.want)
			}
		}
		mustExec(t, sb, fmt.Sprintf("ln -s g %q/glink", dir))
		if got := paths("sub/*.go", dir+"/glink"); got != dir+"/glink/sub/b.go" {
			t.Errorf("symlinked root: %q", got)
		}
		if ms, err := sb.GrepRaw(ctx, "x", podsandbox.GrepOptions{Path: dir + "/glink", Glob: "d.txt"}); err != nil || len(ms) != 1 || ms[0].Path != dir+"/glink/d.txt" {
			t.Errorf("grep through a symlinked root: %+v %v", ms, err)
		}
		mustWrite(t, sb, "glob-root-marker.md", nil)
		for _, root := range []string{"", ".", "/"} {
			fs, err := sb.GlobInfo(ctx, "glob-root-marker.md", root)
			if err != nil || len(fs) != 1 || fs[0].Path != sb.WorkDir()+"/glob-root-marker.md" {
				t.Errorf("root %q: %+v %v", root, fs, err)
			}
		}
	}},
	{"grep cannot be injected", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, dir string) {
		ctx := ctxT(t, 60*time.Second)
		mustWrite(t, sb, dir+"/gr/a.txt", []byte("-v flag\nnothing\n$(id) and `id`\nit's \"quoted\"\nline\n"))
		mustWrite(t, sb, dir+"/gr/b.md", []byte("-v in md\n"))
		mustWrite(t, sb, dir+"/gr/.secret", []byte("-v hidden\n"))
		mustWrite(t, sb, dir+"/gr/odd:name.txt", []byte("-v colon\n"))
		mustWrite(t, sb, dir+"/gr/new\nline.txt", []byte("-v newline\n"))
		show := func(ms []podsandbox.GrepMatch) string {
			var s []string
			for _, m := range ms {
				s = append(s, fmt.Sprintf("%s:%d:%s", strings.TrimPrefix(m.Path, dir+"/gr/"), m.LineNumber, m.Line))
			}
			return strings.Join(s, "|")
		}
		for _, c := range []struct {
			pattern string
			opts    podsandbox.GrepOptions
			want    string
		}{
			{"-v", podsandbox.GrepOptions{Path: dir + "/gr"}, "a.txt:1:-v flag|b.md:1:-v in md|new\nline.txt:1:-v newline|odd:name.txt:1:-v colon"},
			{"-v", podsandbox.GrepOptions{Path: dir + "/gr", Glob: "*.md"}, "b.md:1:-v in md"},
			{"-v", podsandbox.GrepOptions{Path: dir + "/gr", IncludeHidden: true}, ".secret:1:-v hidden|a.txt:1:-v flag|b.md:1:-v in md|new\nline.txt:1:-v newline|odd:name.txt:1:-v colon"},
			{`\$\(id\)`, podsandbox.GrepOptions{Path: dir + "/gr"}, "a.txt:3:$(id) and `id`"},
			{`it's "quoted"`, podsandbox.GrepOptions{Path: dir + "/gr"}, `a.txt:4:it's "quoted"`},
			{"^(line|nothing)$", podsandbox.GrepOptions{Path: dir + "/gr/a.txt"}, "a.txt:2:nothing|a.txt:5:line"},
			{`^\W\w\s[a-z\d]+$`, podsandbox.GrepOptions{Path: dir + "/gr"}, "a.txt:1:-v flag|new\nline.txt:1:-v newline|odd:name.txt:1:-v colon"},
			{"no such text", podsandbox.GrepOptions{Path: dir + "/gr"}, ""},
		} {
			ms, err := sb.GrepRaw(ctx, c.pattern, c.opts)
			if err != nil || show(ms) != c.want {
				t.Errorf("grep %q %+v = %q, %v; want %q", c.pattern, c.opts, show(ms), err, c.want)
			}
		}
		if _, err := sb.GrepRaw(ctx, "a\nb", podsandbox.GrepOptions{Path: dir + "/gr"}); !errors.Is(err, podsandbox.ErrInvalidArgument) {
			t.Errorf("newline pattern: %v", err)
		}
		if _, err := sb.GrepRaw(ctx, "(unclosed", podsandbox.GrepOptions{}); !errors.Is(err, podsandbox.ErrInvalidArgument) {
			t.Errorf("bad regexp: %v", err)
		}
		if ms, err := sb.GrepRaw(ctx, "x", podsandbox.GrepOptions{Path: dir + "/nope"}); !errors.Is(err, podsandbox.ErrNotFound) {
			t.Errorf("missing path: %v %v", ms, err)
		}
	}},
	{"grep: one regex dialect", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, dir string) {
		// Go's RE2 syntax on every transport: API mode runs grep -E on a translation (internal/ere)
		// and checks its lines with Go's regexp. Line 8 is Latin-1, not UTF-8: Go reads its last
		// byte as U+FFFD, which "." matches.
		ctx := ctxT(t, 60*time.Second)
		f := dir + "/d.txt"
		mustWrite(t, sb, f, []byte("foo\nFOO bar\nfoobar\naaaa\nélan\nx1\n-v dash\ncaf\xe9\n\u212a\n\\1 (a)a\n"))
		lines := func(ms []podsandbox.GrepMatch) string {
			var s []string
			for _, m := range ms {
				s = append(s, strconv.Itoa(m.LineNumber))
			}
			return strings.Join(s, " ")
		}
		for _, c := range []struct{ pattern, want string }{
			{`(?i)foo`, "1 2 3"},
			{`a+?`, "2 3 4 5 7 8 10"},
			{`[\D]1`, "6 10"},
			{`(?:foo)bar`, "3"},
			{`^foo$`, "1"},
			{`\Afoo\z`, "1"},
			{`^(foo|aaaa)$`, "1 4"},
			{`bar$|^-`, "2 3 7"},
			{`-v`, "7"},
			{`--`, ""},
			{`\bbar`, "2"},
			{`^.{4}$`, "4 5 8"},
			{`caf.$`, "8"},
			{`(?i)k`, "9"},
			{`[^\x00-\x7f]`, "5 8 9"},
			{`\\1`, "10"},
			{`\(a\)a|x{2}`, "10"},
			{`(^a|b)?a{3}`, "4"},
		} {
			ms, err := sb.GrepRaw(ctx, c.pattern, podsandbox.GrepOptions{Path: f})
			if err != nil || lines(ms) != c.want {
				t.Errorf("grep %q = %q, %v; want lines %q", c.pattern, lines(ms), err, c.want)
			}
		}
		// What grep -E cannot search for alike is refused on every transport, before any search.
		for _, p := range []string{`(a)\1`, `\pL+é`, `\p{Greek}`, `(^-|1)+`, `\B`, `a\x00`} {
			if ms, err := sb.GrepRaw(ctx, p, podsandbox.GrepOptions{Path: f}); !errors.Is(err, podsandbox.ErrInvalidArgument) {
				t.Errorf("grep %q = %+v, %v; want ErrInvalidArgument", p, ms, err)
			}
		}
		if _, err := sb.GrepRaw(ctx, `(a)\1`, podsandbox.GrepOptions{Path: f}); err == nil || !strings.Contains(err.Error(), "backreference") {
			t.Errorf("a backreference is refused as such: %v", err)
		}
	}},
	{"text no transport carries, and the longest command", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, dir string) {
		ctx := ctxT(t, time.Minute)
		mustWrite(t, sb, dir+"/f", []byte("x\n"))
		for _, bad := range []string{"a\x00b", "caf\xe9"} {
			p := dir + "/" + bad
			for name, call := range map[string]func() error{
				"Execute": func() error { _, err := sb.Execute(ctx, "printf %s "+bad+" > out"); return err },
				"Read":    func() error { _, err := sb.Read(ctx, p, 0, 10); return err },
				"Write":   func() error { _, err := sb.Write(ctx, p, []byte("x")); return err },
				"Edit":    func() error { _, err := sb.Edit(ctx, dir+"/f", "x", bad, false); return err },
				"LsInfo":  func() error { _, err := sb.LsInfo(ctx, p); return err },
				"GrepRaw": func() error { _, err := sb.GrepRaw(ctx, "x", podsandbox.GrepOptions{Path: p}); return err },
				"Exists":  func() error { _, err := sb.Exists(ctx, p); return err },
			} {
				if err := call(); !errors.Is(err, podsandbox.ErrInvalidArgument) {
					t.Errorf("%s with %q: %v, want ErrInvalidArgument", name, bad, err)
				}
			}
		}
		if es, err := sb.LsInfo(ctx, dir); err != nil || len(es) != 1 {
			t.Errorf("after the refusals the directory holds %+v, %v; want only f", es, err)
		}
		// The longest command runs; one byte more, 200 KiB and 1 MiB are refused naming the limit.
		head := "echo ok; : '"
		long := head + strings.Repeat("x", podsandbox.MaxCommandBytes-len(head)-1) + "'"
		if r := mustExec(t, sb, long); r.Stdout != "ok\n" || r.ExitCode != 0 {
			t.Errorf("a command of MaxCommandBytes: %+v", r)
		}
		for _, n := range []int{podsandbox.MaxCommandBytes + 1, 200 << 10, 1 << 20} {
			_, err := sb.Execute(ctx, strings.Repeat(" ", n-4)+"true")
			if !errors.Is(err, podsandbox.ErrInvalidArgument) || !strings.Contains(err.Error(), strconv.Itoa(podsandbox.MaxCommandBytes)) {
				t.Errorf("a %d-byte command: %v, want ErrInvalidArgument naming the limit", n, err)
			}
		}
	}},
	{"exists", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, dir string) {
		ctx := ctxT(t, 30*time.Second)
		mustWrite(t, sb, dir+"/f", []byte("x"))
		for p, want := range map[string]bool{dir + "/f": true, dir: false, dir + "/missing": false} {
			if got, err := sb.Exists(ctx, p); got != want || err != nil {
				t.Errorf("Exists(%q) = %v, %v", p, got, err)
			}
		}
	}},
	{"seed: hello.txt", func(t *testing.T, sb *podsandbox.KubernetesPodSandbox, _ string) {
		ctx := ctxT(t, 30*time.Second)
		mustWrite(t, sb, "/workspace/hello.txt", []byte("hello world"))
		got, err := sb.Read(ctx, "/workspace/hello.txt", 0, 0)
		if err != nil || got != "     1\thello world" {
			t.Errorf("Read = %q, %v", got, err)
		}
	}},
}

func TestConformance(t *testing.T) {
	for _, tr := range slices.Concat(transports, gvisorTransports) {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			gvisor := strings.HasSuffix(tr.name, "-gvisor")
			if gvisor {
				e2e.RequireGVisor(t)
			}
			sb := startSandbox(t, tr.image, tr.options()...)
			if gvisor {
				t.Run("the kernel is gVisor's", func(t *testing.T) {
					r := mustExec(t, sb, "uname -r; dmesg 2>&1 | head -n 1")
					if !strings.Contains(r.Stdout, "gvisor") || !strings.Contains(r.Stdout, "Starting gVisor") {
						t.Errorf("uname and dmesg say %q: not gVisor's kernel", r.Stdout)
					}
				})
			}
			// After the cases (and before Stop): the calls took this transport's path, not a fallback.
			t.Cleanup(func() {
				if got, want := sb.Via(), tr.via(); want != "" && got != want {
					t.Errorf("Via() = %q after the cases, want %q", got, want)
				}
			})
			for i, c := range slices.Concat(conformance, processCases) {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					dir := fmt.Sprintf("%s/case%02d", sb.WorkDir(), i)
					mustExec(t, sb, fmt.Sprintf("mkdir -p %q", dir))
					c.run(t, sb, dir)
				})
			}
		})
	}
}

// assertDead checks that every pid listed in file is gone (zombies count as gone).
func assertDead(t *testing.T, sb podsandbox.Sandbox, file string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := mustExec(t, sb, fmt.Sprintf(`for p in $(cat %q); do s=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' /proc/$p/status 2>/dev/null); [ -n "$s" ] && [ "$s" != Z ] && echo "$p alive"; done; true`, file))
		if r.Stdout == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("processes survived: %q", r.Stdout)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestSeedPython is the seed walk-through: API mode with the Debian python image prints 2.
func TestSeedPython(t *testing.T) {
	t.Parallel()
	sb := startSandbox(t, e2e.ImagePython, podsandbox.WithMode(podsandbox.ModeAPI))
	r := mustExec(t, sb, "python3 -c 'print(1+1)'")
	if r.Stdout != "2\n" || r.ExitCode != 0 {
		t.Errorf("got %+v", r)
	}
}

// TestTransportsAgree runs one script of operations on every transport and compares the results.
func TestTransportsAgree(t *testing.T) {
	t.Parallel()
	results := map[string]string{}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			sb := startSandbox(t, tr.image, tr.options()...)
			var b strings.Builder
			ctx := ctxT(t, 2*time.Minute)
			rec := func(v ...any) { fmt.Fprintln(&b, v...) }
			d := sb.WorkDir() + "/agree"
			for _, f := range []string{"x/a.py", "x/b.py", "x/y/c.txt", "x/.d.py"} {
				_, err := sb.Write(ctx, d+"/"+f, []byte("def f():\n    return 1\n# TODO "+f+"\n"))
				rec("write", f, err)
			}
			r, err := sb.Execute(ctx, "cd agree && ls -a x; sleep 0.2; echo err >&2; exit 3")
			rec("exec", r, err)
			s, err := sb.Read(ctx, d+"/x/a.py", 1, 1)
			rec("read", s, err)
			ls, err := sb.LsInfo(ctx, d+"/x")
			for i := range ls {
				ls[i].ModifiedAt = time.Time{}
			}
			rec("ls", ls, err)
			g, err := sb.GlobInfo(ctx, "**/*.py", d)
			rec("glob", g, err)
			m, err := sb.GrepRaw(ctx, "TODO", podsandbox.GrepOptions{Path: d})
			rec("grep", m, err)
			_, err = sb.Write(ctx, d+"/enc.txt", []byte("caf\xe9\xe8\ncafé\nCAFÉ\n"))
			rec("write latin-1", err)
			for _, p := range []string{`(?i)café`, `caf..`, `^.{4}$`, `[^\x00-\x7f]`, `\pL+é`, `(a)\1`} {
				m, err = sb.GrepRaw(ctx, p, podsandbox.GrepOptions{Path: d + "/enc.txt"})
				rec("grep", p, m, errors.Is(err, podsandbox.ErrInvalidArgument))
			}
			e, err := sb.Edit(ctx, d+"/x/a.py", "return 1", "return 2", false)
			rec("edit", e, err)
			_, err = sb.Edit(ctx, d+"/x/a.py", "nope", "x", false)
			rec("edit-miss", err)
			_, err = sb.Read(ctx, d+"/missing", 0, 0)
			rec("read-missing", errors.Is(err, podsandbox.ErrNotFound))
			results[tr.name] = b.String()
		})
	}
	var first string
	for _, tr := range transports {
		got, ok := results[tr.name]
		if !ok {
			continue
		}
		if first == "" {
			first = got
			continue
		}
		if got != first {
			t.Errorf("%s differs from %s:\n%s\nvs\n%s", tr.name, transports[0].name, got, first)
		}
	}
	if len(results) != len(transports) {
		t.Errorf("only %d of %d transports ran", len(results), len(transports))
	}
}

// notifyWriter calls f when what has been written to it contains on.
type notifyWriter struct {
	on  string
	f   func()
	buf strings.Builder
}

func (n *notifyWriter) Write(p []byte) (int, error) {
	n.buf.Write(p)
	if strings.Contains(n.buf.String(), n.on) {
		n.f()
	}
	return len(p), nil
}
