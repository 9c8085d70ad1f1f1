// Command pause is the pod sandbox process of the local cluster's images (the stand-in for
// registry.k8s.io/pause) and the entrypoint of the "noshell" image.
//
// It sleeps until SIGINT or SIGTERM and then exits 0. While it sleeps it reaps zombies, because it
// may be PID 1 of a pod's shared PID namespace. It is built static (CGO_ENABLED=0) by
// internal/imagebuild.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
