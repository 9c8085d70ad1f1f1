package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/podsandbox/podsandbox/internal/wire"
)

const testToken = "s3cret-t0ken"

// helperEnv selects a helper mode when the test binary is re-executed (see TestMain).
const helperEnv = "PODSANDBOX_SERVER_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "init":
		os.Exit(RunInit([]string{"/bin/sh", "-c", os.Getenv("HELPER_SCRIPT")}, os.Environ()))
	case "search":
		os.Exit(searchHelper())
	default:
		fmt.Fprintln(os.Stderr, "unknown helper", os.Getenv(helperEnv))
		os.Exit(3)
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tenv is one server under test: a real Server behind httptest.NewServer with a fresh work dir.
type tenv struct {
	t     *testing.T
	srv   *Server
	ts    *httptest.Server
	dir   string
	token string
	logs  *syncBuffer
}

func newTenv(t *testing.T, mods ...func(*Config)) *tenv {
	t.Helper()
	dir := t.TempDir()
	logs := &syncBuffer{}
	cfg := Config{
		Token:   testToken,
		WorkDir: dir,
		Logger:  slog.New(slog.NewJSONHandler(logs, nil)),
	}
	for _, m := range mods {
		m(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Shutdown()
		ts.Close()
	})
	return &tenv{t: t, srv: srv, ts: ts, dir: srv.WorkDir(), token: testToken, logs: logs}
}

// request sends body (a []byte, string, io.Reader or a value to JSON-encode) and returns the status
// and the whole response body.
func (e *tenv) request(method, route string, body any, hdr ...string) (int, []byte) {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	case io.Reader:
		r = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.ts.URL+route, r)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set(wire.TokenHeader, e.token)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, route, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading body: %v", method, route, err)
	}
	return resp.StatusCode, data
}

// ok posts body to route, expects 200 and decodes the JSON answer into out (if not nil).
func (e *tenv) ok(route string, body, out any) {
	e.t.Helper()
	code, data := e.request(http.MethodPost, route, body)
	if code != http.StatusOK {
		e.t.Fatalf("POST %s %v: status %d, body %s", route, body, code, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("POST %s: decoding %s: %v", route, data, err)
		}
	}
}

// fail posts body to route and expects a wire.Error with the given status and code.
func (e *tenv) fail(route string, body any, status int, code string) wire.Error {
	e.t.Helper()
	return e.failMethod(http.MethodPost, route, body, status, code)
}

func (e *tenv) failMethod(method, route string, body any, status int, code string) wire.Error {
	e.t.Helper()
	got, data := e.request(method, route, body)
	var we wire.Error
	if err := json.Unmarshal(data, &we); err != nil {
		e.t.Fatalf("%s %s: status %d, body %q is not a wire.Error: %v", method, route, got, data, err)
	}
	if got != status || we.Code != code {
		e.t.Fatalf("%s %s %v: got %d %q (%s), want %d %q", method, route, body, got, we.Code, we.Error, status, code)
	}
	if we.Error == "" {
		e.t.Errorf("%s %s: error body without a message: %s", method, route, data)
	}
	return we
}

func (e *tenv) exec(req wire.ExecRequest) wire.ExecResponse {
	e.t.Helper()
	var resp wire.ExecResponse
	e.ok(wire.RouteExec, req, &resp)
	return resp
}

// path returns the absolute path of rel in the work dir.
func (e *tenv) path(rel string) string { return filepath.Join(e.dir, rel) }

func (e *tenv) writeFile(rel string, data string) string {
	e.t.Helper()
	p := e.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// processGone reports whether pid has exited (no such process, or a zombie nobody reaped yet).
func processGone(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}

// waitGone waits up to d for pid to exit.
func waitGone(t *testing.T, pid int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still alive after %v", pid, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readPid waits for a file holding a pid and returns the pid.
func readPid(t *testing.T, file string) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, err := os.ReadFile(file)
		if err == nil && strings.HasSuffix(string(data), "\n") {
			pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil {
				t.Fatalf("pid file %s: %q", file, data)
			}
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %s", file)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// killLater makes sure a stray test process dies with the test.
func killLater(t *testing.T, pid int) {
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
}
