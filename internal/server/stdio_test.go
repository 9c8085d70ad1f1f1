package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/podsandbox/podsandbox/internal/wire"
)

// startStdio runs ServeStdio over two pipes and returns an HTTP/2 client of it, the writer of the
// server's stdin, and a channel that gets ServeStdio's result.
func startStdio(t *testing.T, ctx context.Context, tokenLine string) (*http2.ClientConn, *io.PipeWriter, <-chan error) {
	t.Helper()
	return startStdioConfig(t, ctx, Config{WorkDir: t.TempDir()}, tokenLine)
}

func startStdioConfig(t *testing.T, ctx context.Context, cfg Config, tokenLine string) (*http2.ClientConn, *io.PipeWriter, <-chan error) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- ServeStdio(ctx, cfg, inR, outW)
		_ = outW.Close()
	}()
	if _, err := io.WriteString(inW, tokenLine); err != nil {
		t.Fatal(err)
	}
	cc, err := (&http2.Transport{AllowHTTP: true}).NewClientConn(&wire.StreamConn{R: outR, W: inW})
	if err != nil {
		t.Fatal(err)
	}
	return cc, inW, done
}

func stdioExec(ctx context.Context, cc *http2.ClientConn, token, command string) (string, int, error) {
	body := fmt.Sprintf(`{"command":%q}`+"\n", command)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://agent"+wire.RouteExecStream, strings.NewReader(body))
	req.Header.Set(wire.TokenHeader, token)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	var out strings.Builder
	dec := json.NewDecoder(bufio.NewReader(resp.Body))
	for {
		var f wire.Frame
		if err := dec.Decode(&f); err != nil {
			return out.String(), 0, err
		}
		switch f.Type {
		case wire.FrameStdout:
			out.Write(f.Data)
		case wire.FrameExit:
			return out.String(), f.ExitCode, nil
		}
	}
}

func TestServeStdio(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cc, inW, done := startStdio(t, ctx, testToken+"\n")

	// Concurrent commands share the one stream.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			out, code, err := stdioExec(ctx, cc, testToken, fmt.Sprintf("echo %d; exit %d", i, i))
			if err != nil || out != fmt.Sprintf("%d\n", i) || code != i {
				t.Errorf("command %d: %q %d %v", i, out, code, err)
			}
		})
	}
	wg.Wait()
	// A call with stdin ends its own stream only: the connection stays open for the next calls.
	body := `{"command":"cat","stdin":true}` + "\n" + "from stdin"
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://agent"+wire.RouteExecStream, strings.NewReader(body))
	req.Header.Set(wire.TokenHeader, testToken)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(all), `"ZnJvbSBzdGRpbg=="`) { // "from stdin", base64 in NDJSON
		t.Errorf("stdin call: %q", all)
	}
	if st := cc.State(); st.Closing || st.Closed {
		t.Errorf("after a call with stdin the connection is %+v, want open", st)
	}
	if _, _, err := stdioExec(ctx, cc, "wrong", "true"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("a wrong token: %v, want status 401", err)
	}

	// The end of stdin ends the server, and a running command with it.
	started := make(chan struct{})
	cmdDone := make(chan error, 1)
	go func() {
		close(started)
		_, _, err := stdioExec(ctx, cc, testToken, "sleep 30")
		cmdDone <- err
	}()
	<-started
	time.Sleep(200 * time.Millisecond) // not an ordering assumption: the checks below hold either way
	_ = inW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeStdio: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeStdio did not return after stdin ended")
	}
	select {
	case err := <-cmdDone:
		if err == nil {
			t.Error("the command on the closed stream ended without an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the command's call did not end with the stream")
	}
}

// TestServeStdioDrainsDurable: when the stream ends, a durable exec runs on to its end and
// records it before ServeStdio returns, while a plain command is killed.
func TestServeStdioDrainsDurable(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	work, procs := t.TempDir(), t.TempDir()
	cc, inW, done := startStdioConfig(t, ctx, Config{WorkDir: work, ProcRoot: procs}, testToken+"\n")

	send := func(req wire.ExecRequest) {
		body, _ := json.Marshal(req)
		r, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://agent"+wire.RouteExecStream, bytes.NewReader(append(body, '\n')))
		r.Header.Set(wire.TokenHeader, testToken)
		go func() {
			if resp, err := cc.RoundTrip(r); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	send(wire.ExecRequest{Command: "echo $$ > plain.pid; sleep 30"})
	send(wire.ExecRequest{Command: "echo $$ > durable.pid; sleep 1; echo done", RequestID: "d1", StoreLimit: 100})
	plain := readPid(t, filepath.Join(work, "plain.pid"))
	readPid(t, filepath.Join(work, "durable.pid"))

	_ = inW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeStdio: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ServeStdio did not return after stdin ended and the durable command's end")
	}
	exit, err := os.ReadFile(filepath.Join(procs, "d1", "exit"))
	if err != nil || !strings.HasPrefix(string(exit), "0 ") {
		t.Errorf("the durable exec's record: exit %q (%v), want code 0 recorded before ServeStdio returned", exit, err)
	}
	if out, err := os.ReadFile(filepath.Join(procs, "d1", "out")); err != nil || string(out) != "done\n" {
		t.Errorf("the durable exec's output: %q, %v", out, err)
	}
	waitGone(t, plain, 10*time.Second)
}

func TestServeStdioCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	_, _, done := startStdio(t, ctx, testToken+"\n")
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ServeStdio did not return when its context ended")
	}
}

func TestServeStdioBadTokenLine(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty stream", "", "no token line"},
		{"empty token", "\n", "no exec token"},
		{"too long", strings.Repeat("x", MaxStdioToken+10) + "\n", "too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ServeStdio(context.Background(), Config{WorkDir: t.TempDir()}, io.NopCloser(strings.NewReader(tc.in)), nopWriteCloser{io.Discard})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ServeStdio = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
