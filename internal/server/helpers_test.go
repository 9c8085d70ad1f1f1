package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
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
	case "requests":
		os.Exit(requestsHelper())
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
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Wait(ctx); err != nil {
			t.Errorf("durable records not finished: %v", err)
		}
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

type helperRequest struct {
	Route string `json:"route"`
	Body  string `json:"body"`
}

type helperResponse struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// requestsHelper runs in a re-executed test binary: it sends the HELPER_REQUESTS to a Server on
// HELPER_WS and prints the responses as JSON.
func requestsHelper() int {
	srv, err := New(Config{Token: "t", WorkDir: os.Getenv("HELPER_WS")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var reqs []helperRequest
	if err := json.Unmarshal([]byte(os.Getenv("HELPER_REQUESTS")), &reqs); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var out []helperResponse
	for _, r := range reqs {
		req := httptest.NewRequest(http.MethodPost, r.Route, strings.NewReader(r.Body))
		req.Header.Set(wire.TokenHeader, "t")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		body := rec.Body.Bytes()
		if !json.Valid(body) {
			body, _ = json.Marshal(string(body))
		}
		out = append(out, helperResponse{Status: rec.Code, Body: body})
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
	return 0
}

// unprivilegedWorkDir makes a work dir that an unprivileged user (see runUnprivileged) can reach,
// with a copy of the test binary next to it.
func unprivilegedWorkDir(t *testing.T) string {
	t.Helper()
	base, err := os.MkdirTemp("", "podsandbox-unpriv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	ws := filepath.Join(base, "ws")
	if err := os.Mkdir(ws, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ws, 0o777); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := copyFile(self, filepath.Join(base, "server.test")); err != nil {
		t.Fatal(err)
	}
	return ws
}

// runUnprivileged sends reqs to a Server on ws in a re-executed test binary. Permission bits do
// not stop root, and tests often run as root: then the helper runs as nobody (uid 65534), for
// which chmod really restricts access. Otherwise it runs as the current (unprivileged) user.
func runUnprivileged(t *testing.T, ws string, reqs ...helperRequest) []helperResponse {
	t.Helper()
	rj, _ := json.Marshal(reqs)
	cmd := exec.Command(filepath.Join(filepath.Dir(ws), "server.test"), "-test.run=^$")
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0", helperEnv+"=requests", "HELPER_WS="+ws, "HELPER_REQUESTS="+string(rj))
	if os.Getuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	data, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, stderr.String())
	}
	var out []helperResponse
	if err := json.Unmarshal(data, &out); err != nil || len(out) != len(reqs) {
		t.Fatalf("helper output %q: %v", data, err)
	}
	return out
}
