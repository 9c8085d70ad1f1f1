// Command sessions is a small HTTP service that gives each user their own sandbox pod:
//
//	POST   /sessions/{user}/exec   run the body (a shell command) in the user's sandbox
//	GET    /sessions               list the users with a sandbox
//	DELETE /sessions/{user}        release the user's sandbox (its pod is deleted)
//
// Behind it a podsandbox.SessionManager keeps one sandbox per user, made by the factory of the
// program's one podsandbox.Client; its warm pool keeps started pods ready, so a new user gets one
// in milliseconds; its cleanup loop releases idle sandboxes and, with the Client's Reaper, deletes
// expired pods, including those a killed earlier process of the service left behind.
//
// The service has no authentication: it listens on 127.0.0.1 only, unless -listen says
// otherwise.
//
//	go run ./examples/sessions                 # serve on 127.0.0.1:8088 until Ctrl-C
//	go run ./examples/sessions -demo           # serve on a loopback port, run a two-user client
//	                                           # scenario against it, shut down, check no pod is left
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/examples/internal/cli"
)

// LabelRun marks the pods of one run of the demo, so that its final check counts only its own.
const LabelRun = "examples.podsandbox.io/run"

// Config is what run needs.
type Config struct {
	Service ServiceConfig
	// Listen is the service's address (serve mode).
	Listen string
	// Demo runs the client scenario on a loopback port and exits.
	Demo    bool
	Verbose bool
}

func main() {
	cli.Main("sessions", func(ctx context.Context) error {
		var (
			flags cli.Flags
			cfg   Config
			sc    = &cfg.Service
		)
		flags.Register(flag.CommandLine)
		flag.StringVar(&sc.Image, "image", cli.ImageServer, "sandbox image (runs the in-pod server: HTTP mode)")
		flag.IntVar(&sc.PoolSize, "pool", 2, "warm pods kept ready")
		flag.DurationVar(&sc.IdleTimeout, "idle", 10*time.Minute, "a user's sandbox is released after this long without a request")
		flag.DurationVar(&sc.CleanupInterval, "cleanup-every", 30*time.Second, "how often idle sandboxes are released and expired pods reaped")
		flag.IntVar(&sc.MaxSessions, "max-sessions", 10, "most users with a sandbox at once")
		flag.StringVar(&cfg.Listen, "listen", "127.0.0.1:8088", "address to serve on; anything beyond loopback lets anyone who reaches it run commands")
		flag.BoolVar(&cfg.Demo, "demo", false, "run the client scenario against the service on a loopback port, then shut down")
		flag.Parse()
		cluster, err := flags.Cluster()
		if err != nil {
			return err
		}
		sc.Cluster, cfg.Verbose = cluster, flags.Verbose
		return run(ctx, cfg, os.Stdout)
	})
}

// run makes the program's one podsandbox.Client, serves (or runs the demo) with it, and closes it
// once the service has deleted its pods.
func run(ctx context.Context, cfg Config, out io.Writer) (err error) {
	sc := &cfg.Service
	sc.Log = cli.NewLogger(out, cfg.Verbose)
	if sc.PoolName == "" {
		sc.PoolName = "sessions"
	}
	tel, err := NewTelemetry(out)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, tel.Shutdown(context.WithoutCancel(ctx))) }()
	sc.Telemetry = tel
	client, err := sc.Cluster.Connect(ctx, sc.Log, tel.ClientOptions()...)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, cli.Close(ctx, client)) }()
	if cfg.Demo {
		return demo(ctx, client, cfg, out)
	}
	return serve(ctx, client, cfg, out)
}

// serve runs the service until ctx ends (Ctrl-C), then deletes every pod it made.
func serve(ctx context.Context, client *podsandbox.Client, cfg Config, out io.Writer) error {
	if host, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		return fmt.Errorf("-listen %q: %w", cfg.Listen, err)
	} else if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		fmt.Fprintf(out, "WARNING: listening on %s: the service has no authentication; anyone who reaches it can run commands in sandboxes\n", cfg.Listen)
	}
	cfg.Service.AccessLog = cfg.Service.Log
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	svc, err := NewService(ctx, client, cfg.Service)
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "sessions service on %s (namespace %s, warm pool of %d, Ctrl-C to stop)\n", base, cfg.Service.Cluster.Namespace, cfg.Service.PoolSize)
	fmt.Fprintf(out, "  curl -s %s/sessions/alice/exec -d 'echo hello > a.txt; ls -l'\n", base)
	fmt.Fprintf(out, "  curl -s %s/sessions\n", base)
	fmt.Fprintf(out, "  curl -s -X DELETE %s/sessions/alice\n", base)
	fmt.Fprintf(out, "  curl -s '%s/sessions/bob/exec?trace=1' -d 'uname -a'   # prints the request's trace here\n", base)
	fmt.Fprintf(out, "  curl -s %s/metrics | grep ^podsandbox_\n", base)

	var serr error
	served := false
	select {
	case <-ctx.Done():
	case serr = <-errc:
		served = true
	}
	fmt.Fprintln(out, "shutting down: deleting every sandbox pod")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if !served {
		<-errc // Serve returns at once when Shutdown begins
	}
	n, err := svc.Shutdown(sctx)
	fmt.Fprintf(out, "released %d sessions, closed the warm pool\n", n)
	if errors.Is(serr, http.ErrServerClosed) {
		serr = nil
	}
	return errors.Join(serr, err)
}

// demo serves on a loopback port, runs Scenario against it, shuts down and checks that no pod of
// this run is left.
func demo(ctx context.Context, client *podsandbox.Client, cfg Config, out io.Writer) (err error) {
	t0 := time.Now()
	run := make([]byte, 4)
	_, _ = rand.Read(run)
	sc := cfg.Service
	sc.Labels = map[string]string{LabelRun: hex.EncodeToString(run)}
	selector := podsandbox.LabelManagedBy + "=" + podsandbox.ManagedByValue + "," + LabelRun + "=" + sc.Labels[LabelRun]

	fmt.Fprintf(out, "Starting the service: warm pool of %d %s pods, idle timeout %s, cleanup every %s\n",
		sc.PoolSize, sc.Image, sc.IdleTimeout, sc.CleanupInterval)
	svc, err := NewService(ctx, client, sc)
	if err != nil {
		return err
	}
	shutdownDone := false
	defer func() {
		if !shutdownDone { // a failure on the way: still delete every pod
			err = errors.Join(err, Shutdown(ctx, svc, client.Clientset(), sc.Cluster.Namespace, selector, io.Discard))
		}
	}()
	wait := sc.Cluster.StartupTimeout
	if wait <= 0 {
		wait = 2 * time.Minute
	}
	if err := waitWarm(ctx, svc, sc.PoolSize, wait); err != nil {
		return err
	}
	fmt.Fprintf(out, "Warm pool ready: %d pods in %s\n", svc.WarmReady(), cli.Elapsed(time.Since(t0)))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln) // http.ErrServerClosed once Shutdown or Close is called
	}()
	defer func() {
		_ = srv.Close()
		<-served
	}()
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "Service listening on %s\n\n", base)

	// From here pods start in the background (the pool refilling): one line each is enough.
	cli.Quiet(sc.Log, true)
	c := &Client{Base: base}
	if err := Scenario(ctx, c, out); err != nil {
		return fmt.Errorf("scenario: %w", err)
	}
	if err := telemetryTour(ctx, c, out); err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	_ = srv.Shutdown(ctx)

	// Let the pool finish the pods it is starting to refill itself, so that Shutdown finds every
	// pod started and deletes it (not required: the reaper would remove a straggler later).
	fmt.Fprintln(out, "\nWaiting for the warm pool to refill, then shutting down")
	_ = waitWarm(ctx, svc, sc.PoolSize, time.Minute)
	shutdownDone = true
	if err := Shutdown(ctx, svc, client.Clientset(), sc.Cluster.Namespace, selector, out); err != nil {
		return err
	}
	fmt.Fprintf(out, "sessions demo done in %s\n", cli.Elapsed(time.Since(t0)))
	return nil
}

func waitWarm(ctx context.Context, svc *Service, n int, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for svc.WarmReady() < n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the warm pool has %d of %d pods ready after %s", svc.WarmReady(), n, d)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// Shutdown shuts the service down and waits until no pod matching selector is left in
// namespace (deleted pods take a moment to terminate).
func Shutdown(ctx context.Context, svc *Service, client kubernetes.Interface, namespace, selector string, out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	t := time.Now()
	n, err := svc.Shutdown(ctx)
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	fmt.Fprintf(out, "Shutdown: released %d sessions and closed the warm pool\n", n)
	for {
		pods, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return fmt.Errorf("listing pods: %w", err)
		}
		if len(pods.Items) == 0 {
			fmt.Fprintf(out, "Pods left (%s): none, all gone %s after Shutdown\n", selector, cli.Elapsed(time.Since(t)))
			return nil
		}
		select {
		case <-ctx.Done():
			var names []string
			for _, p := range pods.Items {
				names = append(names, p.Name)
			}
			return fmt.Errorf("pods left after Shutdown: %v", names)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
