package server

import (
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

const prSetChildSubreaper = 36 // PR_SET_CHILD_SUBREAPER, <linux/prctl.h>

// forwarded are the signals RunInit passes on to its child.
var forwarded = []os.Signal{
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2,
}

// RunInit makes this process a minimal init: it starts argv (the server, re-executed) as its only
// child, forwards termination signals to it, reaps every process that is re-parented to it, and
// returns the child's exit code (128+n if a signal n killed it) once the child has exited.
//
// Why a separate process: os/exec waits for its children by pid, and a reaper calling
// wait4(-1, ...) in the same process would steal their exit statuses. This process runs no
// os/exec, so waiting for any child here is safe, while the server child keeps exact exit codes.
// It also marks itself a child subreaper, so it adopts orphans even when it is not PID 1.
func RunInit(argv, env []string) int {
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, append([]os.Signal{syscall.SIGCHLD}, forwarded...)...)
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)

	// The child dies with this process (Pdeathsig is per thread: stay on this one).
	runtime.LockOSThread()
	pid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	})
	if err != nil {
		os.Stderr.WriteString("sandbox-server init: cannot start " + argv[0] + ": " + err.Error() + "\n")
		return 1
	}
	tick := time.NewTicker(time.Second) // a safety net: SIGCHLDs coalesce
	defer tick.Stop()
	for {
		select {
		case sig := <-sigs:
			if sig != syscall.SIGCHLD {
				_ = syscall.Kill(pid, sig.(syscall.Signal))
			}
		case <-tick.C:
		}
		if code, done := reap(pid); done {
			return code
		}
	}
}

// reap waits for every child that has exited. It reports the exit code of child once it is gone.
func reap(child int) (code int, done bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return code, done
		}
		if pid == child {
			done = true
			code = ws.ExitStatus()
			if ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
		}
	}
}
