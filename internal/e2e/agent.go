package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"
)

// BuildAgent builds cmd/sandbox-server as the static Linux binary that podsandbox.NewAgent takes
// (for this machine's architecture, the nodes' here) and returns its bytes.
func BuildAgent() ([]byte, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	root, err := checkoutRoot(wd)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "psbx-agent-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "agent")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/sandbox-server")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOFLAGS=-buildvcs=false")
	if o, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("e2e: building the agent: %w\n%s", err, o)
	}
	return os.ReadFile(out)
}
