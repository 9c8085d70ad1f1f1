// Command sandbox-server is podsandbox's in-pod HTTP server (routes in internal/wire). It is built
// static (CGO_ENABLED=0) and runs as the container entrypoint.
//
// Settings come from SANDBOX_EXEC_TOKEN (required), SANDBOX_PORT (8080), SANDBOX_WORKDIR
// (/workspace) and SANDBOX_LISTEN (0.0.0.0), overridden by flags (-h lists them).
//
// With -stdio it is the agent form instead: it serves HTTP/2 over stdin and stdout, the way an
// API-mode client that injected it talks to it through a pods/exec stream.
//
// As PID 1 it re-executes itself: PID 1 stays a tiny init that forwards signals and reaps orphaned
// processes, the child serves. On SIGTERM or SIGINT the server stops accepting, kills the process
// group of every running command and exits within about a second.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/podsandbox/podsandbox/internal/server"
)

func main() {
	opts, err := server.ParseOptions(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		os.Stderr.WriteString("sandbox-server: " + err.Error() + "\n")
		os.Exit(2)
	}
	if opts.Init == "on" || (opts.Init == "auto" && os.Getpid() == 1) {
		exe, err := os.Executable()
		if err != nil {
			exe = "/proc/self/exe"
		}
		argv := append([]string{exe}, os.Args[1:]...)
		os.Exit(server.RunInit(append(argv, "-init=off"), os.Environ()))
	}
	if opts.Stdio {
		os.Exit(serveStdio(opts))
	}
	os.Exit(serve(opts))
}

// serveStdio is the agent form: HTTP/2 over stdin and stdout, started by a client through a
// pods/exec stream in an image that has no server of its own. It ends when stdin ends, or on
// SIGTERM or SIGINT, killing the commands still running either way.
func serveStdio(opts *server.Options) int {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts.Logger = logger
	if err := os.MkdirAll(opts.WorkDir, 0o755); err != nil {
		logger.Warn("work dir unusable", "workdir", opts.WorkDir, "error", err)
	}
	// Non-blocking stdin goes through the runtime's poller, so closing it (on a signal) ends a
	// pending read; children never inherit it.
	_ = syscall.SetNonblock(syscall.Stdin, true)
	stdin := os.NewFile(uintptr(syscall.Stdin), "stdin")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := server.ServeStdio(ctx, opts.Config, stdin, os.Stdout); err != nil {
		logger.Error("stdio", "error", err)
		return 1
	}
	return 0
}

func serve(opts *server.Options) int {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	opts.Logger = logger
	srv, err := server.New(opts.Config)
	if err != nil {
		logger.Error("invalid configuration", "error", err)
		return 2
	}
	if err := os.MkdirAll(srv.WorkDir(), 0o755); err != nil {
		logger.Warn("work dir unusable", "workdir", srv.WorkDir(), "error", err)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		logger.Error("listen", "addr", opts.Addr, "error", err)
		return 1
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	logger.Info("serving", "addr", ln.Addr().String(), "workdir", srv.WorkDir(), "pid", os.Getpid(),
		"max_file_bytes", opts.MaxFileBytes)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	select {
	case err := <-served:
		logger.Error("serve", "error", err)
		return 1
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	srv.Shutdown() // refuse new commands, SIGKILL every running process group
	sctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
	}
	_ = srv.Wait(sctx) // the killed durable execs' records
	logger.Info("stopped")
	return 0
}
