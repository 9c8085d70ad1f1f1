package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/mcpserver"
)

func (c *cli) mcpCmd() *cobra.Command {
	var image, mode, addr, pull string
	var approveAll bool
	var idle time.Duration
	var pool int
	var iso isolation
	var agent agentFlag
	cmd := &cobra.Command{
		Use:   "mcp --image IMAGE [--http ADDR]",
		Short: "Serve the agent toolset over MCP (stdio, or streamable HTTP with --http): a sandbox per MCP session",
		Long: "Serve the console toolset (ls, read_file, write_file, edit_file, glob, grep, execute) over the Model Context Protocol.\n" +
			"Each MCP session gets its own sandbox pod, deleted when the session ends or has been idle for --idle-timeout.\n" +
			"Tools that require approval (execute) are refused unless --approve-all: MCP cannot ask a person in every client.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if image == "" {
				return errors.New("--image is required: the image every session's sandbox runs (for example podsandbox.local/busybox:1 with --mode api)")
			}
			isoOpts, err := iso.options()
			if err != nil {
				return err
			}
			agentOpts, err := agent.options(mode)
			if err != nil {
				return err
			}
			cl, err := c.connect()
			if err != nil {
				return err
			}
			f, err := cl.Factory(image, slices.Concat(c.sandboxOptions(mode, pull), isoOpts, agentOpts, []podsandbox.Option{podsandbox.WithIdleTimeout(idle)})...)
			if err != nil {
				return err
			}
			mopts := []podsandbox.ManagerOption{podsandbox.WithDefaultIdleTimeout(idle)}
			if pool > 0 {
				mopts = append(mopts, podsandbox.WithWarmPool(pool, podsandbox.WithPoolName("mcp")))
			}
			m, err := podsandbox.NewSessionManager(f, mopts...)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			defer func() {
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
				defer cancel()
				_, _ = m.Shutdown(sctx)
			}()
			if err := m.Start(ctx); err != nil {
				return err
			}
			sopts := []mcpserver.Option{mcpserver.WithLogger(c.log)}
			if approveAll {
				sopts = append(sopts, mcpserver.WithApproveAll())
			}
			s, err := mcpserver.New(m, sopts...)
			if err != nil {
				return err
			}
			defer s.Close()
			if addr == "" {
				return s.RunStdio(ctx)
			}
			return serveHTTP(ctx, addr, s.HTTPHandler(idle), c)
		},
	}
	cmd.Flags().StringVar(&image, "image", "", "image of every session's sandbox")
	cmd.Flags().StringVar(&mode, "mode", string(podsandbox.ModeHTTP), "transport: http (the image runs podsandbox's server) or api (any image with /bin/sh)")
	cmd.Flags().StringVar(&addr, "http", "", "serve streamable HTTP on this address (e.g. 127.0.0.1:8090) instead of stdio")
	cmd.Flags().BoolVar(&approveAll, "approve-all", false, "run tools that require approval (execute) without asking anyone")
	cmd.Flags().DurationVar(&idle, "idle-timeout", 30*time.Minute, "release a session's sandbox after this long unused")
	cmd.Flags().StringVar(&pull, "image-pull-policy", "", "Always, IfNotPresent or Never (default: Kubernetes's)")
	iso.register(cmd)
	agent.register(cmd)
	cmd.Flags().IntVar(&pool, "pool", 0, "keep this many started pods ready (warm pool \"mcp\"), so a new MCP session gets a sandbox in milliseconds")
	return cmd
}

// serveHTTP serves h on addr until ctx ends, then shuts the server down.
func serveHTTP(ctx context.Context, addr string, h http.Handler, c *cli) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--http %s: %w", addr, err)
	}
	fmt.Fprintf(c.stderr, "podsandbox: MCP over streamable HTTP at http://%s/\n", ln.Addr())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	<-errc
	return err
}
