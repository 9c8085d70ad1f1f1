package server

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/podsandbox/podsandbox/internal/wire"
)

// Options are cmd/sandbox-server's settings: the Server's Config plus where to listen and how to
// run as PID 1.
type Options struct {
	Config
	// Addr is the listen address, host:port.
	Addr string
	// Init is "auto" (be an init process when running as PID 1), "on" or "off". See RunInit.
	Init string
	// Stdio serves over stdin and stdout instead of listening (see ServeStdio); the token is
	// stdin's first line.
	Stdio bool
}

// ParseOptions reads the settings from the environment (wire.EnvToken, EnvPort, EnvWorkDir,
// EnvListen) with command line flags overriding them. A missing token is an error. Usage text and
// errors go to out.
func ParseOptions(args []string, getenv func(string) string, out io.Writer) (*Options, error) {
	envOr := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("sandbox-server", flag.ContinueOnError)
	fs.SetOutput(out)
	token := fs.String("token", getenv(wire.EnvToken),
		"exec token (default $"+wire.EnvToken+"; prefer the variable: flags are visible in the process list)")
	port := fs.String("port", envOr(wire.EnvPort, strconv.Itoa(DefaultPort)), "listen port ($"+wire.EnvPort+")")
	listen := fs.String("listen", envOr(wire.EnvListen, DefaultListen), "listen address ($"+wire.EnvListen+")")
	workDir := fs.String("workdir", envOr(wire.EnvWorkDir, DefaultWorkDir), "work dir ($"+wire.EnvWorkDir+")")
	maxFile := fs.Int64("max-file-bytes", DefaultMaxFileBytes, "largest file read, edited or written")
	initMode := fs.String("init", "auto", "act as init (reap zombies, forward signals): auto (when PID 1), on, off")
	stdio := fs.Bool("stdio", false, "serve HTTP/2 over stdin/stdout instead of listening; the token is stdin's first line")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *token == "" && !*stdio {
		return nil, errors.New("no exec token: set " + wire.EnvToken + " (the server refuses to run without one)")
	}
	p, err := strconv.Atoi(*port)
	if err != nil || p < 1 || p > 65535 {
		return nil, fmt.Errorf("invalid port %q", *port)
	}
	if *maxFile <= 0 {
		return nil, fmt.Errorf("invalid -max-file-bytes %d", *maxFile)
	}
	switch *initMode {
	case "auto", "on", "off":
	default:
		return nil, fmt.Errorf("invalid -init %q: want auto, on or off", *initMode)
	}
	return &Options{
		Config: Config{Token: *token, WorkDir: *workDir, MaxFileBytes: *maxFile},
		Addr:   net.JoinHostPort(*listen, strconv.Itoa(p)),
		Init:   *initMode,
		Stdio:  *stdio,
	}, nil
}
