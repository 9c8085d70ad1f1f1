package server

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func initHelper(t *testing.T, script string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0", helperEnv+"=init", "HELPER_SCRIPT="+script)
	cmd.Stderr = os.Stderr
	return cmd
}

func ppid(pid int) int {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	n, _ := strconv.Atoi(f[1])
	return n
}

func TestInitReapsOrphans(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	release := filepath.Join(dir, "release")
	// The subshell exits at once, orphaning the sleep, which RunInit adopts (as subreaper, or as
	// PID 1) and must reap when it dies. The shell itself runs until the test releases it, so
	// the reaping is seen while init still has a child; nothing here depends on a fixed delay.
	cmd := initHelper(t, `(sleep 60 & echo $! > '`+pidFile+`'); while [ ! -e '`+release+`' ]; do sleep 0.02; done; exit 7`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killLater(t, cmd.Process.Pid)
	orphan := readPid(t, pidFile)
	killLater(t, orphan)
	// The subshell wrote the pid before it exited, so the orphan may still have it for a parent
	// for a while on a loaded machine: wait for the adoption instead of assuming it is done.
	deadline := time.Now().Add(10 * time.Second)
	for got := ppid(orphan); got != cmd.Process.Pid; got = ppid(orphan) {
		if time.Now().After(deadline) {
			t.Fatalf("orphan's parent is %d, want the init process %d", got, cmd.Process.Pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := syscall.Kill(orphan, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Gone from /proc altogether: exited and reaped (a zombie would still be listed).
	deadline = time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat("/proc/" + strconv.Itoa(orphan)); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphan %d not reaped (state gone=%v)", orphan, processGone(orphan))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if cmd.ProcessState.ExitCode() != 7 {
		t.Fatalf("init exit: %v, want the child's 7", err)
	}
}

func TestInitForwardsSignals(t *testing.T) {
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	cmd := initHelper(t, `trap 'exit 5' TERM; echo $$ > '`+ready+`'; while :; do sleep 0.05; done`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child := readPid(t, ready)
	killLater(t, child)
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if cmd.ProcessState.ExitCode() != 5 || time.Since(start) > 3*time.Second {
		t.Fatalf("init exit %d after %v, want 5", cmd.ProcessState.ExitCode(), time.Since(start))
	}
	// A child killed by a signal: 128+n.
	cmd = initHelper(t, `kill -KILL $$`)
	_ = cmd.Run()
	if cmd.ProcessState.ExitCode() != 137 {
		t.Fatalf("exit %d, want 137", cmd.ProcessState.ExitCode())
	}
}

func TestInitAsPID1(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("a new PID namespace needs root; TestInitReapsOrphans covers reaping as a subreaper")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	cmd := initHelper(t, `echo "$PPID" > '`+out+`'; (sleep 0.2 &); sleep 0.5; exit 3`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	if err := cmd.Run(); cmd.ProcessState == nil {
		t.Fatalf("cannot start in a new PID namespace: %v", err)
	}
	data, _ := os.ReadFile(out)
	if strings.TrimSpace(string(data)) != "1" || cmd.ProcessState.ExitCode() != 3 {
		t.Fatalf("shell's parent %q (want 1), exit %d (want 3)", data, cmd.ProcessState.ExitCode())
	}
}
