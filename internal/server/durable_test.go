package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podsandbox/podsandbox/internal/wire"
)

// A durable exec survives its request: the client goes away mid-command, the command runs on,
// and its record holds the whole output and the exit code. A second request with the same id is
// refused with CodeExists.
func TestDurableExecOutlivesItsRequest(t *testing.T) {
	root := filepath.Join(t.TempDir(), "procs")
	e := newTenv(t, func(c *Config) { c.ProcRoot = root })
	gate := filepath.Join(e.dir, "gate")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := `echo started; while [ ! -e '` + gate + `' ]; do sleep 0.02; done; echo done; echo oops >&2; exit 9`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.ts.URL+wire.RouteExecStream,
		strings.NewReader(line(wire.ExecRequest{Command: cmd, RequestID: "req-1", StoreLimit: 1000})))
	req.Header.Set(wire.TokenHeader, testToken)
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var f wire.Frame
	if err := json.NewDecoder(resp.Body).Decode(&f); err != nil || string(f.Data) != "started\n" {
		t.Fatalf("%+v %v", f, err)
	}
	cancel() // the client is gone
	resp.Body.Close()

	// The id is taken while the record exists.
	again, _ := http.NewRequest(http.MethodPost, e.ts.URL+wire.RouteExecStream,
		strings.NewReader(line(wire.ExecRequest{Command: cmd, RequestID: "req-1"})))
	again.Header.Set(wire.TokenHeader, testToken)
	r2, err := e.ts.Client().Do(again)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if r2.StatusCode != http.StatusConflict || !strings.Contains(string(body), wire.CodeExists) {
		t.Fatalf("second request: %d %s", r2.StatusCode, body)
	}

	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "req-1")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if data, _ := os.ReadFile(filepath.Join(dir, "exit")); strings.HasPrefix(string(data), "9 ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no exit code recorded: the command did not outlive its request")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for name, want := range map[string]string{"out": "started\ndone\n", "err": "oops\n", "cmd": cmd, "spid": ""} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || (want != "" && string(data) != want) {
			t.Errorf("%s = %q, %v; want %q", name, data, err, want)
		}
	}
	for _, name := range []string{"pgid", "started", "out.eof", "err.eof", "auto", "server"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A durable exec's stored output is capped, and the cut is recorded; the stream still carries
// everything.
func TestDurableExecStoreLimit(t *testing.T) {
	root := filepath.Join(t.TempDir(), "procs")
	e := newTenv(t, func(c *Config) { c.ProcRoot = root })
	frames := streamFrames(t, e, line(wire.ExecRequest{Command: `head -c 5000 /dev/zero | tr '\0' a`, RequestID: "capped", StoreLimit: 100, Keep: true}))
	if got := joinFrames(frames, wire.FrameStdout); len(got) != 5000 {
		t.Errorf("streamed %d bytes, want 5000", len(got))
	}
	// The record's end is written after the response.
	waitCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Wait(waitCtx); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(root, "capped", "out"))
	if len(data) != 100 {
		t.Errorf("stored %d bytes, want 100", len(data))
	}
	for _, name := range []string{"out.cut", "exit"} {
		if _, err := os.Stat(filepath.Join(root, "capped", name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "capped", "auto")); err == nil {
		t.Error("a kept record is marked for expiry")
	}
	for _, bad := range []string{"../x", "A"} {
		req, _ := http.NewRequest(http.MethodPost, e.ts.URL+wire.RouteExecStream, strings.NewReader(line(wire.ExecRequest{Command: "true", RequestID: bad})))
		req.Header.Set(wire.TokenHeader, testToken)
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("request id %q: status %d, want 400", bad, resp.StatusCode)
		}
	}
}
