package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/podsandbox/podsandbox"
)

// agentFlag is --agent FILE: API-mode sandboxes copy that binary (cmd/sandbox-server, built
// static for the nodes) into their pod and send every call through it over one long-lived
// pods/exec, instead of a pods/exec per call. It pays off in a long-lived process such as mcp.
type agentFlag struct{ path string }

func (f *agentFlag) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.path, "agent", "", "with --mode api: the agent binary to inject (build it with CGO_ENABLED=0 GOOS=linux go build -o FILE github.com/podsandbox/podsandbox/cmd/sandbox-server); calls then cost about 3 ms instead of a pods/exec each")
}

// options reads and checks the binary; mode is the --mode flag's value.
func (f *agentFlag) options(mode string) ([]podsandbox.Option, error) {
	if f.path == "" {
		return nil, nil
	}
	if podsandbox.Mode(mode) != podsandbox.ModeAPI {
		return nil, fmt.Errorf("--agent needs --mode api: in HTTP mode the image runs the server itself")
	}
	bin, err := os.ReadFile(f.path)
	if err != nil {
		return nil, fmt.Errorf("--agent: %w", err)
	}
	a, err := podsandbox.NewAgent(bin)
	if err != nil {
		return nil, fmt.Errorf("--agent %s: %w", f.path, err)
	}
	return []podsandbox.Option{podsandbox.WithAgent(a)}, nil
}
