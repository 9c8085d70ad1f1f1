package podsandbox_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/podsandbox/podsandbox"
)

// A sandbox in API mode with the Python image: the seed walk-through.
func ExampleNewKubernetesPodSandbox() {
	ctx := context.Background()
	sb, err := podsandbox.NewKubernetesPodSandbox("python:3.12-slim",
		podsandbox.WithMode(podsandbox.ModeAPI),
		podsandbox.WithNamespace("sandboxes"),
	)
	if err != nil {
		log.Fatal(err)
	}
	if err := sb.Start(ctx); err != nil {
		var se *podsandbox.StartupError
		if errors.As(err, &se) {
			log.Fatalf("pod did not start: %s (%s)", se.Reason, se.Message)
		}
		log.Fatal(err)
	}
	defer sb.Stop(ctx)
	r, err := sb.Execute(ctx, "python3 -c 'print(1+1)'")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(r.Stdout) // 2
}

// Untrusted code: gVisor's kernel instead of the node's, and egress denied except DNS and one
// internal package mirror. Start fails at once with a *StartupError when the cluster has no
// RuntimeClass "gvisor" (Reason RuntimeClassNotFound) or the node lacks its handler
// (RuntimeHandlerUnavailable).
func ExampleWithEgressAllow() {
	ctx := context.Background()
	sb, err := podsandbox.NewKubernetesPodSandbox("python:3.12-slim",
		podsandbox.WithMode(podsandbox.ModeAPI),
		podsandbox.WithRuntimeClass("gvisor"),
		podsandbox.WithEgressAllow("10.20.30.40/32", 443), // the mirror, TCP and UDP 443 only
	)
	if err != nil {
		log.Fatal(err)
	}
	if err := sb.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer sb.Stop(ctx) // deletes the pod and its NetworkPolicy
	r, _ := sb.Execute(ctx, "pip download --index-url https://10.20.30.40/simple requests")
	fmt.Println(r.ExitCode)
}

// Exit codes are results; timeouts kill the command's whole process group.
func ExampleKubernetesPodSandbox_Execute() {
	ctx := context.Background()
	sb, _ := podsandbox.NewKubernetesPodSandbox("podsandbox.local/sandbox-server:dev")
	_ = sb.Start(ctx)
	defer sb.Stop(ctx)
	r, err := sb.Execute(ctx, "make test", podsandbox.WithTimeout(2*time.Minute), podsandbox.WithDir("project"))
	switch {
	case err != nil:
		log.Fatal(err) // could not run at all (pod gone, transport down)
	case r.TimedOut:
		fmt.Println("timed out; partial output:", r.Output)
	case r.ExitCode != 0:
		fmt.Printf("failed (%d): %s", r.ExitCode, r.Stderr)
	}
}

// A dev server in the background: it outlives the call, the connection and the caller. The
// sandbox's id and the process's id are all that a restarted caller (or another replica) needs to
// follow it again.
func ExampleKubernetesPodSandbox_StartProcess() {
	ctx := context.Background()
	sb, _ := podsandbox.NewKubernetesPodSandbox("python:3.12-slim", podsandbox.WithMode(podsandbox.ModeAPI),
		podsandbox.WithSandboxID("user-1"), podsandbox.WithDeleteOnStop(false))
	_ = sb.Start(ctx)
	p, err := sb.StartProcess(ctx, "python3 -m http.server 8000", podsandbox.WithDir("site"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("started", p.ID())

	// Later, in another process: attach to the sandbox, then to the process, and follow its log
	// for a while (Follow returns where it stopped, to go on from there).
	c, _ := podsandbox.NewClient(nil)
	again, _ := c.Attach(ctx, "default", "user-1")
	q, err := again.Process(ctx, p.ID())
	if errors.Is(err, podsandbox.ErrNoProcess) {
		log.Fatal("removed, or the pod was replaced")
	}
	window, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, at, _ := q.Follow(window, podsandbox.Cursor{}, os.Stdout, os.Stderr)
	fmt.Println("read up to", at.Stdout, "bytes of stdout")
	_ = q.Signal(ctx, syscall.SIGTERM) // to the server's whole process group
	st, _ := q.Wait(ctx)
	fmt.Println(st.State, st.ExitCode)
}

// Long output keeps its beginning and its end; the whole of it stays in the sandbox, for an agent
// to search.
func ExampleExecuteResponse_outputFile() {
	ctx := context.Background()
	sb, _ := podsandbox.NewKubernetesPodSandbox("podsandbox.local/sandbox-server:dev")
	_ = sb.Start(ctx)
	defer sb.Stop(ctx)
	r, err := sb.Execute(ctx, "go test ./... 2>&1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Output) // at most DefaultOutputLimit bytes, with "[... N bytes omitted ...]"
	if r.OutputFile != "" {
		fails, _ := sb.GrepRaw(ctx, "^--- FAIL", podsandbox.GrepOptions{Path: r.OutputFile})
		fmt.Println(len(fails), "failures in", r.StdoutBytes+r.StderrBytes, "bytes of output")
	}
}

// A program that wants a terminal (a prompt, colours, a full-screen tool) gets one when asked.
func ExampleWithPTY() {
	ctx := context.Background()
	sb, _ := podsandbox.NewKubernetesPodSandbox("podsandbox.local/sandbox-server:dev")
	_ = sb.Start(ctx)
	defer sb.Stop(ctx)
	sizes := make(chan podsandbox.TerminalSize, 1)
	sizes <- podsandbox.TerminalSize{Rows: 50, Cols: 132} // say, the user's window grew
	r, err := sb.Execute(ctx, "stty size; ls --color=auto", podsandbox.WithPTY(podsandbox.TerminalSize{Rows: 24, Cols: 80}),
		podsandbox.WithTerminalResize(sizes), podsandbox.WithStdin(strings.NewReader("")))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(r.Stdout) // what the terminal showed, "\r\n" line ends; Stderr is empty
}

// A background process that reads its input as it comes: a REPL, a language server.
func ExampleProcess_WriteStdin() {
	ctx := context.Background()
	sb, _ := podsandbox.NewKubernetesPodSandbox("python:3.12-slim", podsandbox.WithMode(podsandbox.ModeAPI))
	_ = sb.Start(ctx)
	defer sb.Stop(ctx)
	p, err := sb.StartProcess(ctx, "python3 -i -q", podsandbox.WithOpenStdin())
	if err != nil {
		log.Fatal(err)
	}
	_ = p.WriteStdin(ctx, strings.NewReader("print(6 * 7)\n"))
	_ = p.CloseStdin(ctx) // end of file: the interpreter exits
	st, _, _ := p.Follow(ctx, podsandbox.Cursor{}, os.Stdout, os.Stderr)
	fmt.Println(st.ExitCode)
}

// Files: relative paths resolve against the work dir (/workspace).
func ExampleKubernetesPodSandbox_Write() {
	ctx := context.Background()
	sb, _ := podsandbox.NewKubernetesPodSandbox("podsandbox.local/sandbox-server:dev")
	_ = sb.Start(ctx)
	defer sb.Stop(ctx)
	if _, err := sb.Write(ctx, "hello.txt", []byte("hello world\n")); err != nil {
		log.Fatal(err)
	}
	text, err := sb.Read(ctx, "hello.txt", 0, 0)
	if errors.Is(err, podsandbox.ErrNotFound) {
		log.Fatal("gone")
	}
	fmt.Println(text) //      1	hello world
}

// One Client per process: it owns the connection and the one pod watch per namespace that every
// sandbox made from it shares.
func ExampleNewClient() {
	ctx := context.Background()
	c, err := podsandbox.NewClient(nil) // in-cluster, else $KUBECONFIG or ~/.kube/config
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	sb, err := c.NewSandbox("busybox:stable", podsandbox.WithMode(podsandbox.ModeAPI), podsandbox.WithNamespace("sandboxes"))
	if err != nil {
		log.Fatal(err) // a contradiction between options is reported here, before any pod exists
	}
	if err := sb.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer sb.Stop(ctx)
	r, _ := sb.Execute(ctx, "echo hi")
	fmt.Print(r.Stdout)
}

// One sandbox per user, idle ones released, expired pods of dead processes reaped.
func ExampleNewSessionManager() {
	ctx := context.Background()
	c, err := podsandbox.NewClient(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	factory, err := c.Factory("podsandbox.local/sandbox-server:dev",
		podsandbox.WithNamespace("sandboxes"), podsandbox.WithIdleTimeout(15*time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	m, err := podsandbox.NewSessionManager(factory,
		podsandbox.WithMaxSessions(100),
		podsandbox.WithReaper(c.Reaper("sandboxes")),
		podsandbox.WithCleanupInterval(time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Start(ctx); err != nil { // the idle cleanup and the reaper, every minute
		log.Fatal(err)
	}
	defer m.Shutdown(ctx)

	sb, err := m.GetOrCreate(ctx, "user-42")
	if errors.Is(err, podsandbox.ErrSessionLimit) {
		log.Fatal(err) // Session limit of 100 reached. ...
	}
	_, _ = sb.Execute(ctx, "echo hi")
	m.KeepAlive("user-42") // the agent is thinking: not idle
}

// A warm pool makes a new session's first command take milliseconds. It is built from the
// factory's spec, so a warm session and a cold one are the same pod.
func ExampleWithWarmPool() {
	ctx := context.Background()
	c, err := podsandbox.NewClient(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	factory, err := c.Factory("podsandbox.local/sandbox-server:dev", podsandbox.WithNamespace("sandboxes"))
	if err != nil {
		log.Fatal(err)
	}
	m, err := podsandbox.NewSessionManager(factory, podsandbox.WithWarmPool(5, podsandbox.WithPoolName("web")))
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Start(ctx); err != nil { // fills the pool in the background
		log.Fatal(err)
	}
	defer m.Shutdown(ctx)
	sb, _ := m.GetOrCreate(ctx, "user-7") // an empty pool falls back to a cold start
	_, _ = sb.Execute(ctx, "true")
	fmt.Println("warm pods ready:", m.Pool().Ready())
}

// A janitor for pods whose process died: run it anywhere with the same namespace.
func ExampleReaper_Reap() {
	ctx := context.Background()
	c, err := podsandbox.NewClient(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	res, err := c.Reaper("sandboxes").Reap(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("reaped", res.Pods, "pods")
}

// Attach to a sandbox another process started (a CLI's `podsandbox run --id build-7`, or a
// replica that died): nothing is created, and Stop only detaches.
func ExampleClient_Attach() {
	ctx := context.Background()
	c, err := podsandbox.NewClient(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	sb, err := c.Attach(ctx, "sandboxes", "build-7")
	if errors.Is(err, podsandbox.ErrNoSandbox) {
		log.Fatal("no such sandbox: start it first")
	} else if err != nil {
		log.Fatal(err)
	}
	defer sb.Stop(ctx)
	r, err := sb.Execute(ctx, "ls /workspace")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(r.Stdout)
}

// Remove a sandbox another process started, in whatever state its pod is (`podsandbox rm`).
func ExampleClient_Remove() {
	ctx := context.Background()
	c, err := podsandbox.NewClient(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	if err := c.Remove(ctx, "sandboxes", "build-7"); errors.Is(err, podsandbox.ErrNoSandbox) {
		fmt.Println("already gone")
	} else if err != nil {
		log.Fatal(err)
	}
}

// Traces and metrics go to the providers the application installs: here the OpenTelemetry SDK
// with a span exporter that prints to stdout and a Prometheus exporter on /metrics. Without
// WithTracerProvider/WithMeterProvider the Client uses the global providers (no-ops unless set).
func ExampleWithTracerProvider() {
	ctx := context.Background()
	spans, err := stdouttrace.New(stdouttrace.WithPrettyPrint())
	if err != nil {
		log.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(spans))
	defer tp.Shutdown(ctx)
	prom, err := otelprom.New() // registers with prometheus.DefaultRegisterer
	if err != nil {
		log.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(prom))
	defer mp.Shutdown(ctx)
	http.Handle("/metrics", promhttp.Handler())

	c, err := podsandbox.NewClient(nil, podsandbox.WithTracerProvider(tp), podsandbox.WithMeterProvider(mp))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	sb, err := c.NewSandbox("busybox:stable", podsandbox.WithMode(podsandbox.ModeAPI), podsandbox.WithNamespace("sandboxes"))
	if err != nil {
		log.Fatal(err)
	}
	if err := sb.Start(ctx); err != nil { // span podsandbox.Start, with an event per phase
		log.Fatal(err)
	}
	defer sb.Stop(ctx)
	if _, err := sb.Execute(ctx, "true"); err != nil { // span podsandbox.Execute
		log.Fatal(err)
	}
}

// API mode with the injected agent: the in-pod server, built once for the nodes' architecture,
// is copied into each pod's /tmp and carries every call over one pods/exec stream.
//
//	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -ldflags=-s -o psbx-agent \
//	    github.com/podsandbox/podsandbox/cmd/sandbox-server
func ExampleNewAgent() {
	ctx := context.Background()
	bin, err := os.ReadFile("psbx-agent")
	if err != nil {
		log.Fatal(err)
	}
	agent, err := podsandbox.NewAgent(bin) // share it: sandboxes keep a reference
	if err != nil {
		log.Fatal(err)
	}
	sb, err := podsandbox.NewKubernetesPodSandbox("python:3.12-slim",
		podsandbox.WithMode(podsandbox.ModeAPI),
		podsandbox.WithAgent(agent),
	)
	if err != nil {
		log.Fatal(err)
	}
	if err := sb.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer sb.Stop(ctx)
	r, err := sb.Execute(ctx, "python3 -c 'print(1+1)'")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(r.Stdout, sb.Via()) // "agent", or "exec" where the agent cannot run
}
