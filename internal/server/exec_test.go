package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podsandbox/podsandbox/internal/outcap"
	"github.com/podsandbox/podsandbox/internal/wire"
)

func TestExecExitCodes(t *testing.T) {
	e := newTenv(t)
	tests := []struct {
		command string
		want    int
	}{
		{"true", 0},
		{"false", 1},
		{"exit 2", 2},
		{"no-such-command-podsandbox", 127},
		{"kill -9 $$", 137},
		{"kill -TERM $$", 143},
		{"exit 255", 255},
		{"", 0},
	}
	for _, tt := range tests {
		t.Run(tt.command, func(t *testing.T) {
			e.t = t
			r := e.exec(wire.ExecRequest{Command: tt.command})
			if r.ExitCode != tt.want || r.TimedOut {
				t.Fatalf("%q: exit %d timed_out %v, want %d (%+v)", tt.command, r.ExitCode, r.TimedOut, tt.want, r)
			}
		})
	}
}

func TestExecOutput(t *testing.T) {
	e := newTenv(t)
	r := e.exec(wire.ExecRequest{Command: "echo out1; sleep 0.05; echo err1 >&2; sleep 0.05; echo out2; sleep 0.05; printf err2 >&2"})
	if r.Stdout != "out1\nout2\n" || r.Stderr != "err1\nerr2" {
		t.Fatalf("stdout %q stderr %q", r.Stdout, r.Stderr)
	}
	if r.Output != "out1\nerr1\nout2\nerr2" {
		t.Fatalf("combined output not interleaved in arrival order: %q", r.Output)
	}
	if r.Truncated || r.ExitCode != 0 {
		t.Fatalf("%+v", r)
	}
}

func TestExecStdinIsDevNull(t *testing.T) {
	e := newTenv(t)
	start := time.Now()
	r := e.exec(wire.ExecRequest{Command: "cat; echo rc=$?"})
	if r.Output != "rc=0\n" || time.Since(start) > 5*time.Second {
		t.Fatalf("%+v after %v", r, time.Since(start))
	}
}

func TestExecTruncation(t *testing.T) {
	e := newTenv(t)
	tests := []struct {
		name      string
		req       wire.ExecRequest
		out, err  string
		combined  string
		truncated bool
	}{
		{"exactly at limit", wire.ExecRequest{Command: "printf 0123456789", OutputLimit: 10}, "0123456789", "", "0123456789", false},
		{"one over", wire.ExecRequest{Command: "printf 0123456789a", OutputLimit: 10}, "0123456789", "", "0123456789", true},
		{"combined over", wire.ExecRequest{Command: "printf 01234; sleep 0.05; printf abcdefg >&2", OutputLimit: 10}, "01234", "abcdefg", "01234abcde", true},
		{"stderr over", wire.ExecRequest{Command: "printf 0123456789abc >&2", OutputLimit: 10}, "", "0123456789", "0123456789", true},
		{"default limit", wire.ExecRequest{Command: "head -c 100001 /dev/zero | tr '\\0' x"}, strings.Repeat("x", 100000), "", strings.Repeat("x", 100000), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			r := e.exec(tt.req)
			if r.Stdout != tt.out || r.Stderr != tt.err || r.Output != tt.combined || r.Truncated != tt.truncated {
				t.Fatalf("got stdout %q stderr %q output %q truncated %v", short(r.Stdout), short(r.Stderr), short(r.Output), r.Truncated)
			}
		})
	}
	// Output beyond the cap is drained, so a command writing a lot is not blocked.
	start := time.Now()
	r := e.exec(wire.ExecRequest{Command: "head -c 20000000 /dev/zero; echo done >&2", OutputLimit: 1000})
	if !r.Truncated || len(r.Stdout) != 1000 || r.Stderr != "done\n" || r.ExitCode != 0 {
		t.Fatalf("big output: truncated %v len %d stderr %q exit %d", r.Truncated, len(r.Stdout), r.Stderr, r.ExitCode)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("big output took %v", d)
	}
}

func short(s string) string {
	if len(s) > 40 {
		return s[:20] + "..." + s[len(s)-20:] + " (" + strconv.Itoa(len(s)) + " bytes)"
	}
	return s
}

func TestExecDirAndEnv(t *testing.T) {
	e := newTenv(t)
	sub := "dir with 'quotes' and spaces/ünï"
	if err := os.MkdirAll(e.path(sub), 0o755); err != nil {
		t.Fatal(err)
	}
	r := e.exec(wire.ExecRequest{Command: "pwd"})
	if r.Stdout != e.dir+"\n" {
		t.Fatalf("default dir: %q, want %q", r.Stdout, e.dir)
	}
	r = e.exec(wire.ExecRequest{Command: "pwd", Dir: sub})
	if r.Stdout != e.path(sub)+"\n" {
		t.Fatalf("relative dir: %q", r.Stdout)
	}
	r = e.exec(wire.ExecRequest{Command: "pwd", Dir: e.path(sub)})
	if r.Stdout != e.path(sub)+"\n" {
		t.Fatalf("absolute dir: %q", r.Stdout)
	}
	val := "multi\nline 'q' \"d\" $(touch injected) `x`"
	r = e.exec(wire.ExecRequest{Command: `printf '%s' "$V"`, Env: map[string]string{"V": val}})
	if r.Stdout != val || exists(e.path("injected")) {
		t.Fatalf("env value: %q", r.Stdout)
	}
	e.fail(wire.RouteExec, wire.ExecRequest{Command: "true", Dir: "missing"}, http.StatusNotFound, wire.CodeNotFound)
	e.writeFile("file", "x")
	e.fail(wire.RouteExec, wire.ExecRequest{Command: "true", Dir: "file"}, http.StatusBadRequest, wire.CodeNotDirectory)
	e.fail(wire.RouteExec, wire.ExecRequest{Command: "true", Env: map[string]string{"A=B": "x"}}, http.StatusBadRequest, wire.CodeInvalid)
	e.fail(wire.RouteExec, wire.ExecRequest{Command: "true", Env: map[string]string{"A": "x\x00y"}}, http.StatusBadRequest, wire.CodeInvalid)
	// A single argv string over the kernel's MAX_ARG_STRLEN cannot be run.
	e.fail(wire.RouteExec, wire.ExecRequest{Command: "true #" + strings.Repeat("x", 200<<10)}, http.StatusBadRequest, wire.CodeInvalid)
}

func TestExecTimeoutKillsGroup(t *testing.T) {
	e := newTenv(t)
	pidFile := e.path("pid")
	start := time.Now()
	r := e.exec(wire.ExecRequest{
		Command:        `sh -c 'sleep 60 & echo $! > pid; wait' & echo partial; echo err >&2; wait`,
		TimeoutSeconds: 0.5,
	})
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("timeout took %v", d)
	}
	if r.ExitCode != TimeoutExitCode || !r.TimedOut {
		t.Fatalf("exit %d timed_out %v, want 124 true", r.ExitCode, r.TimedOut)
	}
	if r.Stdout != "partial\n" || r.Stderr != "err\n" || !strings.Contains(r.Output, "partial") {
		t.Fatalf("partial output lost: %+v", r)
	}
	grandchild := readPid(t, pidFile)
	killLater(t, grandchild)
	waitGone(t, grandchild, 2*time.Second)
	if n := len(e.srv.Running()); n != 0 {
		t.Fatalf("%d commands still registered", n)
	}
}

func TestExecCancelKillsGroup(t *testing.T) {
	e := newTenv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	body, _ := json.Marshal(wire.ExecRequest{Command: `sleep 60 & echo $! > pid; wait`})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.ts.URL+wire.RouteExec, strings.NewReader(string(body)))
	req.Header.Set(wire.TokenHeader, testToken)
	done := make(chan error, 1)
	go func() {
		resp, err := e.ts.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	pid := readPid(t, e.path("pid"))
	killLater(t, pid)
	if processGone(pid) {
		t.Fatal("command died before the request was cancelled")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("request error %v", err)
	}
	waitGone(t, pid, 3*time.Second)
	deadline := time.Now().Add(3 * time.Second)
	for len(e.srv.Running()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(e.srv.Running()); n != 0 {
		t.Fatalf("%d commands still registered", n)
	}
}

func TestExecBackgroundChildHoldingStdout(t *testing.T) {
	e := newTenv(t, func(c *Config) { c.WaitDelay = 300 * time.Millisecond })
	start := time.Now()
	// The child keeps stdout open (no redirect) and writes to it later.
	r := e.exec(wire.ExecRequest{Command: `(sleep 1; echo late) & echo $! > pid; echo early`})
	d := time.Since(start)
	pid := readPid(t, e.path("pid"))
	killLater(t, pid)
	if d > 3*time.Second {
		t.Fatalf("returned after %v", d)
	}
	if r.ExitCode != 0 || r.Stdout != "early\n" {
		t.Fatalf("%+v", r)
	}
	if processGone(pid) {
		t.Fatal("the background child was killed; it should keep running")
	}

	// With the default wait delay too, and stderr as well.
	e2 := newTenv(t)
	start = time.Now()
	r = e2.exec(wire.ExecRequest{Command: `sleep 100 & echo $! > pid; echo bg >&2`})
	pid = readPid(t, e2.path("pid"))
	killLater(t, pid)
	if d := time.Since(start); d > 4*time.Second || r.Stderr != "bg\n" || r.ExitCode != 0 {
		t.Fatalf("after %v: %+v", d, r)
	}
}

func TestExecOutputBeforeExitIsKept(t *testing.T) {
	// A background child holds the pipe; everything the shell wrote before exiting is still
	// delivered even though reading stops after the wait delay.
	e := newTenv(t, func(c *Config) { c.WaitDelay = 100 * time.Millisecond })
	r := e.exec(wire.ExecRequest{Command: `sleep 5 & echo $! > pid; head -c 60000 /dev/zero | tr '\0' y`})
	killLater(t, readPid(t, e.path("pid")))
	if len(r.Stdout) != 60000 {
		t.Fatalf("got %d bytes, want 60000", len(r.Stdout))
	}
}

func TestExecConcurrent(t *testing.T) {
	e := newTenv(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r wire.ExecResponse
			code, data := e.request(http.MethodPost, wire.RouteExec, wire.ExecRequest{Command: "sleep 0.2; echo " + strconv.Itoa(i)})
			if code != 200 || json.Unmarshal(data, &r) != nil || r.Stdout != strconv.Itoa(i)+"\n" {
				t.Errorf("command %d: %d %s", i, code, data)
			}
		}()
	}
	wg.Wait()
}

func TestShutdownKillsCommands(t *testing.T) {
	e := newTenv(t)
	done := make(chan wire.ExecResponse, 1)
	go func() {
		var r wire.ExecResponse
		_, data := e.request(http.MethodPost, wire.RouteExec, wire.ExecRequest{Command: `sleep 60 & echo $! > pid; wait`})
		_ = json.Unmarshal(data, &r)
		done <- r
	}()
	pid := readPid(t, e.path("pid"))
	killLater(t, pid)
	start := time.Now()
	e.srv.Shutdown()
	select {
	case r := <-done:
		if r.ExitCode != 137 {
			t.Fatalf("killed command: %+v", r)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("command still running after Shutdown")
	}
	waitGone(t, pid, 2*time.Second)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	e.fail(wire.RouteExec, wire.ExecRequest{Command: "true"}, http.StatusServiceUnavailable, wire.CodeInternal)
}

// TestExecStreamShutdownSaysStopped: a command that Shutdown kills ends its stream with Stopped,
// so the client does not take exit 137 and part of the output for the command's own result.
func TestExecStreamShutdownSaysStopped(t *testing.T) {
	e := newTenv(t)
	done := make(chan []wire.Frame, 1)
	go func() {
		done <- streamFrames(t, e, line(wire.ExecRequest{Command: `echo $$ > pid; echo started; exec sleep 60`}))
	}()
	pid := readPid(t, e.path("pid"))
	killLater(t, pid)
	e.srv.Shutdown()
	select {
	case frames := <-done:
		if x := frames[len(frames)-1]; !x.Stopped || x.ExitCode != 137 {
			t.Fatalf("exit frame after Shutdown: %+v, want Stopped and exit code 137", x)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("command still running after Shutdown")
	}
	// A command that ends on its own is never Stopped, even with a signal's exit code.
	e2 := newTenv(t)
	frames := streamFrames(t, e2, line(wire.ExecRequest{Command: `kill -9 $$`}))
	if x := frames[len(frames)-1]; x.Stopped || x.ExitCode != 137 {
		t.Fatalf("kill -9 $$: exit frame %+v, want exit code 137 and not Stopped", x)
	}
}

// streamFrames posts an /exec/stream body and returns the decoded frames.
func streamFrames(t *testing.T, e *tenv, body string) []wire.Frame {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+wire.RouteExecStream, strings.NewReader(body))
	req.Header.Set(wire.TokenHeader, testToken)
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		data, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), data)
	}
	var frames []wire.Frame
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var f wire.Frame
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			t.Fatalf("frame %q: %v", sc.Text(), err)
		}
		frames = append(frames, f)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(frames) == 0 || frames[len(frames)-1].Type != wire.FrameExit {
		t.Fatalf("stream without exit frame: %+v", frames)
	}
	for _, f := range frames[:len(frames)-1] {
		if f.Type == wire.FrameExit {
			t.Fatalf("exit frame before the end: %+v", frames)
		}
	}
	return frames
}

func joinFrames(frames []wire.Frame, typ string) string {
	var b strings.Builder
	for _, f := range frames {
		if typ == "" && f.Type != wire.FrameExit || f.Type == typ {
			b.Write(f.Data)
		}
	}
	return b.String()
}

func line(req wire.ExecRequest) string {
	b, _ := json.Marshal(req)
	return string(b) + "\n"
}

func TestExecStream(t *testing.T) {
	e := newTenv(t)
	frames := streamFrames(t, e, line(wire.ExecRequest{Command: "echo a; sleep 0.05; echo b >&2; sleep 0.05; echo c; exit 3"}))
	var order []string
	for _, f := range frames[:len(frames)-1] {
		order = append(order, f.Type+":"+string(f.Data))
	}
	if strings.Join(order, "") != "o:a\ne:b\no:c\n" {
		t.Fatalf("frame order %q", order)
	}
	if x := frames[len(frames)-1]; x.ExitCode != 3 || x.TimedOut || x.Error != "" {
		t.Fatalf("exit frame %+v", x)
	}

	// Streams are uncapped without an output_limit; with one, each stream sends its first
	// limit+1 bytes, and the exit code is the command's own.
	frames = streamFrames(t, e, line(wire.ExecRequest{Command: "head -c 300000 /dev/zero"}))
	if n := len(joinFrames(frames, wire.FrameStdout)); n != 300000 {
		t.Fatalf("streamed %d bytes", n)
	}
	frames = streamFrames(t, e, line(wire.ExecRequest{Command: "head -c 300000 /dev/zero; echo abc >&2; printf 0123456789ABC >&2; exit 5", OutputLimit: 10}))
	if n, errs := len(joinFrames(frames, wire.FrameStdout)), joinFrames(frames, wire.FrameStderr); n != 11 || errs != "abc\n0123456" {
		t.Fatalf("with output_limit 10: %d bytes of stdout, stderr %q; want 11 and the first 11 bytes", n, errs)
	}
	if x := frames[len(frames)-1]; x.ExitCode != 5 {
		t.Fatalf("capped exit frame %+v", x)
	}

	// Timeout.
	frames = streamFrames(t, e, line(wire.ExecRequest{Command: "echo before; sleep 30", TimeoutSeconds: 0.3}))
	if x := frames[len(frames)-1]; x.ExitCode != 124 || !x.TimedOut || joinFrames(frames, wire.FrameStdout) != "before\n" {
		t.Fatalf("timeout frames %+v", frames)
	}

	// A command that cannot start ends the stream with an error.
	frames = streamFrames(t, e, line(wire.ExecRequest{Command: "true #" + strings.Repeat("x", 200<<10)}))
	if x := frames[len(frames)-1]; x.Error == "" || x.ExitCode == 0 {
		t.Fatalf("start failure frames %+v", frames)
	}
	// So does a bad dir or env: in-band, as clients behind pods/proxy only see 2xx bodies.
	for _, req := range []wire.ExecRequest{{Command: "true", Dir: "missing"}, {Command: "true", Env: map[string]string{"A=B": ""}}} {
		frames = streamFrames(t, e, line(req))
		if x := frames[len(frames)-1]; len(frames) != 1 || x.Error == "" || x.ExitCode == 0 {
			t.Fatalf("%+v: frames %+v", req, frames)
		}
	}
	// A request line that cannot be read is refused before the stream starts.
	e.fail(wire.RouteExecStream, `{"command":"true"`, http.StatusBadRequest, wire.CodeInvalid)
	e.fail(wire.RouteExecStream, strings.Repeat(" ", execBodyLimit+10), http.StatusRequestEntityTooLarge, wire.CodeTooLarge)
	// A request line without the final newline is accepted.
	frames = streamFrames(t, e, `{"command":"echo ok"}`)
	if joinFrames(frames, "") != "ok\n" {
		t.Fatalf("%+v", frames)
	}
}

func TestExecStreamStdin(t *testing.T) {
	e := newTenv(t)
	// stdin follows the request line, byte for byte, and its end closes the command's stdin.
	var all []byte
	for i := range 256 {
		all = append(all, byte(i))
	}
	stdin := strings.Repeat(string(all), 1000)
	frames := streamFrames(t, e, line(wire.ExecRequest{Command: "cat; echo eof >&2", Stdin: true})+stdin)
	if got := joinFrames(frames, wire.FrameStdout); got != stdin {
		t.Fatalf("stdin echoed as %d bytes, want %d", len(got), len(stdin))
	}
	if joinFrames(frames, wire.FrameStderr) != "eof\n" {
		t.Fatalf("%+v", frames[len(frames)-1])
	}
	// Without the stdin flag, the rest of the body is not stdin.
	frames = streamFrames(t, e, line(wire.ExecRequest{Command: "cat; echo rc=$?"})+"ignored")
	if joinFrames(frames, "") != "rc=0\n" {
		t.Fatalf("%q", joinFrames(frames, ""))
	}
	// A command that ignores its stdin does not hang the stream.
	// Nor does it spoil later requests (interrupting the stdin read must not leave a reused
	// connection with a cancelled context).
	for i := range 20 {
		frames = streamFrames(t, e, line(wire.ExecRequest{Command: "echo quick", Stdin: true})+strings.Repeat("z", (i%4)*100_000))
		if joinFrames(frames, "") != "quick\n" {
			t.Fatalf("round %d: %q %+v", i, joinFrames(frames, ""), frames)
		}
		frames = streamFrames(t, e, line(wire.ExecRequest{Command: "echo next"}))
		if joinFrames(frames, "") != "next\n" {
			t.Fatalf("round %d, next request: %+v", i, frames)
		}
		if r := e.exec(wire.ExecRequest{Command: "echo plain"}); r.Output != "plain\n" {
			t.Fatalf("round %d, /exec: %+v", i, r)
		}
	}
}

func TestExecStreamInteractive(t *testing.T) {
	// Full duplex: output arrives while the request body (stdin) is still open.
	e := newTenv(t)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+wire.RouteExecStream, pr)
	req.Header.Set(wire.TokenHeader, testToken)
	go func() {
		_, _ = io.WriteString(pw, line(wire.ExecRequest{Command: `echo ready; read x; echo "got $x"; read y; echo "got $y"`, Stdin: true}))
	}()
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	next := func() wire.Frame {
		t.Helper()
		var f wire.Frame
		if err := dec.Decode(&f); err != nil {
			t.Fatal(err)
		}
		return f
	}
	if f := next(); string(f.Data) != "ready\n" {
		t.Fatalf("%+v", f)
	}
	_, _ = io.WriteString(pw, "one\n")
	if f := next(); string(f.Data) != "got one\n" {
		t.Fatalf("%+v", f)
	}
	_, _ = io.WriteString(pw, "two\n")
	if f := next(); string(f.Data) != "got two\n" {
		t.Fatalf("%+v", f)
	}
	if f := next(); f.Type != wire.FrameExit || f.ExitCode != 0 {
		t.Fatalf("%+v", f)
	}
	// The command is over while the client still holds stdin open: the stream still ends.
	_ = pw.Close()
}

func TestExecStreamOpenStdinAfterExit(t *testing.T) {
	e := newTenv(t)
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+wire.RouteExecStream, pr)
	req.Header.Set(wire.TokenHeader, testToken)
	go func() { _, _ = io.WriteString(pw, line(wire.ExecRequest{Command: "echo bye", Stdin: true})) }()
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	done := make(chan string, 1)
	go func() { b, _ := io.ReadAll(resp.Body); done <- string(b) }()
	select {
	case b := <-done:
		if !strings.Contains(b, `"t":"x"`) {
			t.Fatalf("no exit frame: %s", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not end while the client kept stdin open")
	}
}

func TestExecStreamCancelKillsGroup(t *testing.T) {
	e := newTenv(t)
	for _, withStdin := range []bool{false, true} {
		t.Run("stdin="+strconv.FormatBool(withStdin), func(t *testing.T) {
			pidFile := filepath.Join(e.dir, "pid-"+strconv.FormatBool(withStdin))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pr, pw := io.Pipe()
			defer pw.Close()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.ts.URL+wire.RouteExecStream, pr)
			req.Header.Set(wire.TokenHeader, testToken)
			go func() {
				_, _ = io.WriteString(pw, line(wire.ExecRequest{Command: `sleep 60 & echo $! > '` + pidFile + `'; echo started; wait`, Stdin: withStdin}))
				if !withStdin {
					pw.Close()
				}
			}()
			resp, err := e.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var f wire.Frame
			if err := json.NewDecoder(resp.Body).Decode(&f); err != nil || string(f.Data) != "started\n" {
				t.Fatalf("%+v %v", f, err)
			}
			pid := readPid(t, pidFile)
			killLater(t, pid)
			cancel()
			resp.Body.Close()
			waitGone(t, pid, 3*time.Second)
		})
	}
}

// binaryStreamFrames is streamFrames with "Accept: wire.StreamBinary".
func binaryStreamFrames(t *testing.T, e *tenv, body string) []wire.Frame {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+wire.RouteExecStream, strings.NewReader(body))
	req.Header.Set(wire.TokenHeader, testToken)
	req.Header.Set("Accept", wire.StreamBinary)
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != wire.StreamBinary {
		t.Fatalf("status %d type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var frames []wire.Frame
	br := bufio.NewReader(resp.Body)
	for {
		var head [5]byte
		if _, err := io.ReadFull(br, head[:]); err == io.EOF {
			return frames
		} else if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, binary.BigEndian.Uint32(head[1:]))
		if _, err := io.ReadFull(br, data); err != nil {
			t.Fatal(err)
		}
		f := wire.Frame{Type: string(head[:1]), Data: data}
		if f.Type == wire.FrameExit {
			f = wire.Frame{}
			if err := json.Unmarshal(data, &f); err != nil {
				t.Fatal(err)
			}
		}
		frames = append(frames, f)
	}
}

func TestExecStreamBinary(t *testing.T) {
	e := newTenv(t)
	frames := binaryStreamFrames(t, e, line(wire.ExecRequest{Command: "echo a; sleep 0.05; echo b >&2; sleep 0.05; printf 'c\\0\\n'; exit 3"}))
	var order []string
	for _, f := range frames[:len(frames)-1] {
		order = append(order, f.Type+":"+string(f.Data))
	}
	if strings.Join(order, "") != "o:a\ne:b\no:c\x00\n" {
		t.Fatalf("frame order %q", order)
	}
	if x := frames[len(frames)-1]; x.Type != wire.FrameExit || x.ExitCode != 3 || x.Data != nil {
		t.Fatalf("exit frame %+v", x)
	}
	frames = binaryStreamFrames(t, e, line(wire.ExecRequest{Command: "head -c 3000000 /dev/zero | tr '\\0' z"}))
	if got := joinFrames(frames, wire.FrameStdout); len(got) != 3000000 || strings.Trim(got, "z") != "" {
		t.Fatalf("streamed %d bytes", len(got))
	}
}

// TestGatherCoalesces: a short read takes what the pipe holds and what arrives soon after, in one
// chunk; a closed pipe ends the gathering at once with nothing lost.
func TestGatherCoalesces(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 128<<10)
	if _, err := w.Write(bytes.Repeat([]byte("a"), 4096)); err != nil {
		t.Fatal(err)
	}
	n, err := r.Read(buf)
	if err != nil || n != 4096 {
		t.Fatalf("Read = %d, %v", n, err)
	}
	if _, err := w.Write(bytes.Repeat([]byte("b"), 8192)); err != nil {
		t.Fatal(err)
	}
	n = gather(r, buf, n)
	if want := slices.Concat(bytes.Repeat([]byte("a"), 4096), bytes.Repeat([]byte("b"), 8192)); !bytes.Equal(buf[:n], want) {
		t.Fatalf("gathered %d bytes, want the 12288 written, in order", n)
	}
	if _, err := w.Write([]byte("end")); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	n = gather(r, buf, 0)
	if string(buf[:n]) != "end" {
		t.Fatalf("gathered %q after the close, want %q", buf[:n], "end")
	}
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read after = %d, %v; want EOF", n, err)
	}
}

// TestExecNoOutputTimeout: a command that writes nothing for no_output_seconds is killed (124,
// timed_out and no_output); one whose output keeps coming runs to its end.
func TestExecNoOutputTimeout(t *testing.T) {
	e := newTenv(t)
	for _, tc := range []struct {
		name, cmd string
		quiet     float64
		want      wire.ExecResponse
	}{
		{"silent", "echo started; sleep 60", 0.5, wire.ExecResponse{Stdout: "started\n", ExitCode: TimeoutExitCode, TimedOut: true, NoOutput: true}},
		{"steady output", "for i in 1 2 3 4 5; do echo $i; sleep 0.1; done", 5, wire.ExecResponse{Stdout: "1\n2\n3\n4\n5\n"}},
		{"off", "sleep 0.3; echo late", 0, wire.ExecResponse{Stdout: "late\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := e.exec(wire.ExecRequest{Command: tc.cmd, NoOutputSeconds: tc.quiet, TimeoutSeconds: 30})
			if r.Stdout != tc.want.Stdout || r.ExitCode != tc.want.ExitCode || r.TimedOut != tc.want.TimedOut || r.NoOutput != tc.want.NoOutput {
				t.Fatalf("%+v, want %+v", r, tc.want)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

// TestExecStreamResult: with result_limit the server sends no output, only the exit frame with the
// head and tail of each stream and the byte counts; output over the limit is kept whole in a new
// file under the output root (up to file_limit bytes), and only the newest files are kept.
func TestExecStreamResult(t *testing.T) {
	root := filepath.Join(t.TempDir(), "out")
	e := newTenv(t, func(c *Config) { c.OutputRoot = root })
	result := func(req wire.ExecRequest) *wire.ExecResult {
		t.Helper()
		frames := binaryStreamFrames(t, e, line(req))
		if len(frames) != 1 || frames[0].Type != wire.FrameExit || frames[0].Result == nil {
			t.Fatalf("%q: want the exit frame alone, with a result: %+v", req.Command, frames)
		}
		return frames[0].Result
	}
	marker := func(n int) string { return fmt.Sprintf(outcap.Marker, n) }

	tests := []struct {
		name, cmd        string
		fileLimit        int64
		output, out, err string
		outBytes         int64
		file             string // "" no file
	}{
		{name: "under the limit", cmd: "printf abc; printf E >&2", fileLimit: 100, output: "abcE", out: "abc", err: "E", outBytes: 3},
		{name: "cut, with a file", cmd: "printf 0123456789; printf xy", fileLimit: 100,
			output: "01234" + marker(2) + "789xy", out: "01234" + marker(2) + "789xy", outBytes: 12, file: "0123456789xy"},
		{name: "the file keeps its limit", cmd: "printf 0123456789abcdef", fileLimit: 12,
			output: "01234" + marker(6) + "bcdef", out: "01234" + marker(6) + "bcdef", outBytes: 16, file: "0123456789ab"},
		{name: "cut, no file asked", cmd: "printf 0123456789abcdef",
			output: "01234" + marker(6) + "bcdef", out: "01234" + marker(6) + "bcdef", outBytes: 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := result(wire.ExecRequest{Command: tt.cmd, ResultLimit: 10, FileLimit: tt.fileLimit})
			// The two streams are read apart: their order in Output is the reads'.
			if string(r.Output) != tt.output && string(r.Output) != tt.err+tt.out || string(r.Stdout) != tt.out || string(r.Stderr) != tt.err || r.StdoutBytes != tt.outBytes {
				t.Errorf("output %q stdout %q stderr %q (%d bytes), want %q %q %q (%d)", r.Output, r.Stdout, r.Stderr, r.StdoutBytes, tt.output, tt.out, tt.err, tt.outBytes)
			}
			if r.Truncated != (tt.file != "" || tt.fileLimit == 0) {
				t.Errorf("truncated %v", r.Truncated)
			}
			if tt.file == "" {
				if r.OutputFile != "" {
					t.Errorf("output file %q, want none", r.OutputFile)
				}
				return
			}
			if filepath.Dir(r.OutputFile) != root {
				t.Fatalf("output file %q is not under %s", r.OutputFile, root)
			}
			data, err := os.ReadFile(r.OutputFile)
			if err != nil || string(data) != tt.file {
				t.Errorf("output file holds %q (%v), want %q", data, err, tt.file)
			}
		})
	}

	// Many cut calls: only the newest files stay.
	var last string
	for range wire.OutputFilesKept + 3 {
		last = result(wire.ExecRequest{Command: "seq 100", ResultLimit: 10, FileLimit: 1000}).OutputFile
	}
	ents, err := os.ReadDir(root)
	if err != nil || len(ents) != wire.OutputFilesKept || ents[len(ents)-1].Name() != filepath.Base(last) {
		t.Errorf("%d files kept (%v), want the newest %d", len(ents), err, wire.OutputFilesKept)
	}
}

// inputFrame is one terminal input frame (ExecRequest.PTY).
func inputFrame(typ string, data []byte) string { return string(wire.AppendFrame(nil, typ, data)) }

// TestExecStreamPTY: a command on a pseudo-terminal sees one for stdin, stdout and stderr, of the
// size asked; a resize frame reaches it before the input that follows; the output is stdout
// frames alone.
func TestExecStreamPTY(t *testing.T) {
	e := newTenv(t)
	size, _ := json.Marshal(wire.TerminalSize{Rows: 40, Cols: 100})
	body := line(wire.ExecRequest{Command: `[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty; echo err >&2; IFS= read -r l; stty size; echo "got:$l"`,
		PTY: &wire.TerminalSize{Rows: 24, Cols: 80}, Stdin: true}) +
		inputFrame(wire.FrameResize, size) + inputFrame(wire.FrameInput, []byte("hello\n"))
	frames := binaryStreamFrames(t, e, body)
	out := joinFrames(frames, wire.FrameStdout)
	if x := frames[len(frames)-1]; x.Type != wire.FrameExit || x.ExitCode != 0 || joinFrames(frames, wire.FrameStderr) != "" {
		t.Fatalf("frames %+v", frames)
	}
	// A terminal ends lines with \r\n, and echoes the input.
	for _, want := range []string{"all-tty\r\n", "err\r\n", "hello\r\n", "40 100\r\n", "got:hello\r\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	// Without input the terminal is still there, of the size asked; a bad size is refused.
	frames = binaryStreamFrames(t, e, line(wire.ExecRequest{Command: "tty; stty size", PTY: &wire.TerminalSize{Rows: 5, Cols: 7}}))
	if out := joinFrames(frames, wire.FrameStdout); !strings.HasPrefix(out, "/dev/pts/") || !strings.HasSuffix(out, "\r\n5 7\r\n") {
		t.Errorf("tty; stty size printed %q", out)
	}
	e.fail(wire.RouteExecStream, line(wire.ExecRequest{Command: "true", PTY: &wire.TerminalSize{}}), http.StatusBadRequest, wire.CodeInvalid)

	// A child left holding the terminal does not hold the call (the wait delay, as with pipes),
	// and a timeout kills the group.
	start := time.Now()
	frames = binaryStreamFrames(t, e, line(wire.ExecRequest{Command: "sleep 30 & echo $! > kid; echo bg", PTY: &wire.TerminalSize{Rows: 5, Cols: 7}}))
	if x := frames[len(frames)-1]; x.ExitCode != 0 || joinFrames(frames, wire.FrameStdout) != "bg\r\n" || time.Since(start) > 10*time.Second {
		t.Errorf("background child: %+v after %s", frames, time.Since(start))
	}
	killLater(t, readPid(t, e.path("kid")))
	frames = binaryStreamFrames(t, e, line(wire.ExecRequest{Command: "echo $$ > me; sleep 30", PTY: &wire.TerminalSize{Rows: 5, Cols: 7}, TimeoutSeconds: 0.5}))
	if x := frames[len(frames)-1]; !x.TimedOut || x.ExitCode != TimeoutExitCode {
		t.Errorf("timeout: %+v", x)
	}
	waitGone(t, readPid(t, e.path("me")), 10*time.Second)
}
