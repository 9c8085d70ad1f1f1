//go:build !linux

package server

import "os"

// RunInit is only implemented on Linux, where the server runs; elsewhere it refuses.
func RunInit(argv, env []string) int {
	os.Stderr.WriteString("sandbox-server: -init is only supported on Linux\n")
	return 2
}
