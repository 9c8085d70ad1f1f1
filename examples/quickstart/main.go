// Command quickstart runs a sandbox pod in each of podsandbox's two modes:
//
//   - API mode with a plain Debian python image: every command goes through the Kubernetes
//     pods/exec API, so any image with /bin/sh works. It runs python3 -c 'print(1+1)'.
//   - HTTP mode with the sandbox-server image: the pod runs podsandbox's small HTTP server, the
//     fastest transport. It runs a command, streams another, writes a file and reads it back.
//
// Each pod is deleted at the end (also on Ctrl-C).
//
//	go run ./examples/quickstart                 # against `make cluster-up`'s local cluster
//	go run ./examples/quickstart -kubeconfig ~/.kube/config -pull-policy IfNotPresent \
//	    -python-image python:3.12-slim -server-image registry.example/sandbox-server:dev
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/examples/internal/cli"
)

// Config is what run needs.
type Config struct {
	Cluster     cli.Cluster
	PythonImage string
	ServerImage string
	Verbose     bool
}

func main() {
	cli.Main("quickstart", func(ctx context.Context) error {
		var (
			flags cli.Flags
			cfg   Config
			check bool
		)
		flags.Register(flag.CommandLine)
		flag.StringVar(&cfg.PythonImage, "python-image", cli.ImagePython, "image for API mode: needs /bin/sh, timeout and python3")
		flag.StringVar(&cfg.ServerImage, "server-image", cli.ImageServer, "image for HTTP mode: runs the in-pod sandbox-server")
		flag.BoolVar(&check, "check", false, "only check that the cluster answers, then exit")
		flag.Parse()
		cluster, err := flags.Cluster()
		if err != nil {
			return err
		}
		if check {
			client, err := cluster.Connect(ctx, nil)
			if err != nil {
				return err
			}
			fmt.Printf("cluster %s answers and has a Ready node\n", cluster.REST.Host)
			return cli.Close(ctx, client)
		}
		cfg.Cluster, cfg.Verbose = cluster, flags.Verbose
		return run(ctx, cfg, os.Stdout)
	})
}

// run starts one sandbox in API mode and one in HTTP mode, uses each, and stops them. Both are
// made from one podsandbox.Client, the program's connection to the cluster, closed at the end.
func run(ctx context.Context, cfg Config, out io.Writer) (err error) {
	log := cli.NewLogger(out, cfg.Verbose)
	client, err := cfg.Cluster.Connect(ctx, log)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, cli.Close(ctx, client)) }()
	t0 := time.Now()

	// --- API mode: any image, commands through pods/exec ------------------------------------
	fmt.Fprintf(out, "API mode: %s (commands run through the pods/exec API)\n", cfg.PythonImage)
	sb, err := client.NewSandbox(cfg.PythonImage,
		append(cfg.Cluster.Options(log), podsandbox.WithMode(podsandbox.ModeAPI))...)
	if err != nil {
		return err
	}
	if err := apiMode(ctx, sb, out); err != nil {
		return errors.Join(err, stop(ctx, sb, out))
	}
	if err := stop(ctx, sb, out); err != nil {
		return err
	}

	// --- HTTP mode: the sandbox-server image, the fast transport ------------------------------
	fmt.Fprintf(out, "\nHTTP mode: %s (commands and files through the in-pod server)\n", cfg.ServerImage)
	sb, err = client.NewSandbox(cfg.ServerImage,
		append(cfg.Cluster.Options(log), podsandbox.WithMode(podsandbox.ModeHTTP))...)
	if err != nil {
		return err
	}
	if err := httpMode(ctx, sb, out); err != nil {
		return errors.Join(err, stop(ctx, sb, out))
	}
	if err := stop(ctx, sb, out); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nquickstart done in %s\n", cli.Elapsed(time.Since(t0)))
	return nil
}

func apiMode(ctx context.Context, sb *podsandbox.KubernetesPodSandbox, out io.Writer) error {
	if err := sb.Start(ctx); err != nil {
		return fmt.Errorf("start API-mode sandbox: %w", err)
	}
	res, err := execute(ctx, sb, out, `python3 -c 'print(1+1)'`)
	if err != nil {
		return err
	}
	if strings.TrimSpace(res.Stdout) != "2" {
		return fmt.Errorf("python3 printed %q, want 2", res.Stdout)
	}
	return nil
}

func httpMode(ctx context.Context, sb *podsandbox.KubernetesPodSandbox, out io.Writer) error {
	if err := sb.Start(ctx); err != nil {
		return fmt.Errorf("start HTTP-mode sandbox: %w", err)
	}
	if _, err := execute(ctx, sb, out, `echo "hello from $(hostname), $(id -un) in $(pwd)"`); err != nil {
		return err
	}

	// Output can be streamed while the command runs (uncapped), besides being collected.
	cmd := `for i in 1 2 3; do echo "tick $i"; sleep 0.2; done`
	fmt.Fprintf(out, "  $ %s   (streamed)\n", cmd)
	t := time.Now()
	res, err := sb.Execute(ctx, cmd, podsandbox.WithStdout(&prefixWriter{w: out, prefix: "    | "}), podsandbox.WithTimeout(30*time.Second))
	if err != nil {
		return fmt.Errorf("execute %q: %w", cmd, err)
	}
	fmt.Fprintf(out, "    (exit %d, %s)\n", res.ExitCode, cli.Elapsed(time.Since(t)))

	// Files: paths are relative to the work dir, /workspace.
	t = time.Now()
	w, err := sb.Write(ctx, "notes/hello.txt", []byte("hello\nworld\n"))
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	fmt.Fprintf(out, "  Write  %s: %d bytes (%s)\n", w.Path, w.BytesWritten, cli.Elapsed(time.Since(t)))
	t = time.Now()
	text, err := sb.Read(ctx, "notes/hello.txt", 0, 0)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	fmt.Fprintf(out, "  Read   %s (%s):\n%s\n", w.Path, cli.Elapsed(time.Since(t)), indent(text, "    "))
	return nil
}

// execute runs command and prints it with its output, exit code and duration.
func execute(ctx context.Context, sb podsandbox.Sandbox, out io.Writer, command string) (*podsandbox.ExecuteResponse, error) {
	fmt.Fprintf(out, "  $ %s\n", command)
	t := time.Now()
	res, err := sb.Execute(ctx, command, podsandbox.WithTimeout(30*time.Second))
	if err != nil {
		return nil, fmt.Errorf("execute %q: %w", command, err)
	}
	if res.Output != "" {
		fmt.Fprintln(out, indent(strings.TrimRight(res.Output, "\n"), "    "))
	}
	fmt.Fprintf(out, "    (exit %d, %s)\n", res.ExitCode, cli.Elapsed(time.Since(t)))
	if res.ExitCode != 0 {
		return res, fmt.Errorf("%q exited with %d: %s", command, res.ExitCode, strings.TrimSpace(res.Output))
	}
	return res, nil
}

// stop deletes the sandbox's pod. It runs even when ctx has ended (Ctrl-C), with its own timeout.
func stop(ctx context.Context, sb *podsandbox.KubernetesPodSandbox, out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := sb.Stop(ctx); err != nil {
		return fmt.Errorf("stop %s: %w", sb.PodName(), err)
	}
	fmt.Fprintf(out, "  stopped: pod %s deleted\n", sb.PodName())
	return nil
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

// prefixWriter starts every line written through it with prefix.
type prefixWriter struct {
	w      io.Writer
	prefix string
	mid    bool // the last write ended inside a line
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	var sb strings.Builder
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line == "" {
			continue
		}
		if !p.mid {
			sb.WriteString(p.prefix)
		}
		sb.WriteString(line)
		p.mid = !strings.HasSuffix(line, "\n")
	}
	if _, err := io.WriteString(p.w, sb.String()); err != nil {
		return 0, err
	}
	return len(b), nil
}
