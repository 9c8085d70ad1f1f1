package main

import (
	"bytes"
	"net"
	"net/http"
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

const runMainEnv = "SANDBOX_SERVER_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		// The first run gets its flags from the environment; a child that main re-executes (init
		// mode) gets them on its command line, as in production.
		args := os.Args[1:]
		if len(args) > 0 && strings.HasPrefix(args[0], "-test.") {
			args = strings.Fields(os.Getenv("SANDBOX_SERVER_TEST_ARGS"))
		}
		os.Args = append([]string{os.Args[0]}, args...)
		main()
		return
	}
	os.Exit(m.Run())
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// testServer is main() running in a re-executed test binary.
type testServer struct {
	cmd      *exec.Cmd
	url, dir string
	logs     *lockedBuffer
	once     sync.Once
	waitErr  error
}

// wait waits for the process once; later calls return the same result.
func (s *testServer) wait() error {
	s.once.Do(func() { s.waitErr = s.cmd.Wait() })
	return s.waitErr
}

func startServer(t *testing.T, token string, args ...string) *testServer {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		runMainEnv+"=1",
		"GORACE=atexit_sleep_ms=0", // under -race, each exit would otherwise sleep 1 s
		"SANDBOX_SERVER_TEST_ARGS="+strings.Join(args, " "),
		wire.EnvToken+"="+token,
		wire.EnvPort+"="+strconv.Itoa(port),
		wire.EnvListen+"=127.0.0.1",
		wire.EnvWorkDir+"="+dir,
	)
	logs := &lockedBuffer{}
	cmd.Stderr = logs
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	srv := &testServer{cmd: cmd, dir: dir, logs: logs}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = srv.wait() })
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url + wire.RouteHealth)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not healthy: %v\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv.url = url
	return srv
}

func TestSIGTERM(t *testing.T) {
	for _, mode := range []string{"off", "on"} {
		t.Run("init="+mode, func(t *testing.T) {
			const token = "tok-3x4mple"
			srv := startServer(t, token, "-init="+mode)
			cmd, url, dir, logs := srv.cmd, srv.url, srv.dir, srv.logs
			pidFile := filepath.Join(dir, "pid")
			go func() {
				req, _ := http.NewRequest(http.MethodPost, url+wire.RouteExec,
					strings.NewReader(`{"command":"sleep 60 & echo $! > pid; wait"}`))
				req.Header.Set(wire.TokenHeader, token)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}()
			var pid int
			for deadline := time.Now().Add(5 * time.Second); ; {
				data, err := os.ReadFile(pidFile)
				if err == nil && strings.HasSuffix(string(data), "\n") {
					pid, _ = strconv.Atoi(strings.TrimSpace(string(data)))
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("command did not start\n%s", logs.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })

			start := time.Now()
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- srv.wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("exit: %v\n%s", err, logs.String())
				}
			case <-time.After(3 * time.Second):
				t.Fatalf("still running 3 s after SIGTERM\n%s", logs.String())
			}
			if d := time.Since(start); d > 1500*time.Millisecond {
				t.Errorf("took %v to exit", d)
			}
			for deadline := time.Now().Add(2 * time.Second); ; {
				data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
				if err != nil || strings.Contains(string(data), ") Z ") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the command's process survived the server")
				}
				time.Sleep(10 * time.Millisecond)
			}
			l := logs.String()
			if strings.Contains(l, token) {
				t.Fatal("token logged")
			}
			for _, want := range []string{`"msg":"serving"`, `"route":"/health"`, `"msg":"shutting down"`} {
				if !strings.Contains(l, want) {
					t.Errorf("log lacks %s:\n%s", want, l)
				}
			}
		})
	}
}

func TestRefusesToStartWithoutToken(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, wire.EnvToken+"=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, runMainEnv+"=1", wire.EnvPort+"="+strconv.Itoa(freePort(t)))
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), wire.EnvToken) {
		t.Fatalf("exit %v, output %q", err, out)
	}
}
