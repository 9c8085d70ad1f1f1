// Command scale runs podsandbox's simulated-scale scenarios (package internal/scale) on the
// local cluster's kwok nodes and prints their figures:
//
//	make kwok-up && go run ./internal/scale/cmd/scale [-quick] [-sessions 5000] [-pool 500] [-json FILE]
//
// It needs the fake nodes of `make kwok-up` and a kubeconfig that may read the API server's
// /metrics (the local cluster's admin one, .cluster/kubeconfig). It creates its own namespaces
// and deletes them at the end, also on Ctrl-C. Exit status 1 when a scenario failed or an
// invariant broke (a pod claimed twice, an expired pod not reaped).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/podsandbox/podsandbox/internal/scale"
)

func main() { os.Exit(run()) }

func run() int {
	cfg := scale.Config{}
	var kubeconfig, jsonOut, only string
	var quick bool
	var qps float64
	var burst int
	flag.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig (default $KUBECONFIG, else .cluster/kubeconfig of the checkout)")
	flag.IntVar(&cfg.Sessions, "sessions", 5000, "sessions through GetOrCreate (and pods the informer and reap scenarios see)")
	flag.IntVar(&cfg.Concurrency, "concurrency", 100, "GetOrCreate calls in flight")
	flag.IntVar(&cfg.PoolSize, "pool", 500, "warm pods, shared out over -managers")
	flag.IntVar(&cfg.Managers, "managers", 3, "session managers (each with its own Client) that fill and claim the pool at once")
	flag.StringVar(&cfg.Image, "image", "podsandbox.local/busybox:1", "image of the sandboxes (kwok never pulls it)")
	flag.BoolVar(&quick, "quick", false, "small sizes: 500 sessions, a pool of 100 (unless given)")
	flag.StringVar(&only, "only", "", "comma-separated scenarios of sessions,informer,pool,reap (default all)")
	flag.Float64Var(&qps, "qps", 0, "client-side QPS of the library's clients (0: the library's default)")
	flag.IntVar(&burst, "burst", 0, "client-side burst with -qps")
	flag.BoolVar(&cfg.Real, "real", false, "real pods on the cluster's own nodes (needs -only sessions and a -sessions the node holds, e.g. 200), not kwok's")
	flag.StringVar(&jsonOut, "json", "", "also write the figures as JSON to this file (make bench reads it)")
	flag.Parse()
	if quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["sessions"] {
			cfg.Sessions = 500
		}
		if !set["pool"] {
			cfg.PoolSize = 100
		}
	}
	if only != "" {
		cfg.Scenarios = strings.Split(only, ",")
	}
	if kubeconfig == "" {
		kubeconfig = os.Getenv("KUBECONFIG")
	}
	if kubeconfig == "" {
		kubeconfig = checkoutKubeconfig()
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		fmt.Fprintf(os.Stderr, "scale: kubeconfig %q: %v (start the local cluster with `make cluster-up`)\n", kubeconfig, err)
		return 1
	}
	if qps > 0 {
		rc.QPS, rc.Burst = float32(qps), max(burst, 1)
	}
	cfg.REST = rc
	cfg.Logf = func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "scale %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := scale.Run(ctx, cfg)
	if res != nil {
		fmt.Println(strings.Join(res.Lines(), "\n"))
		if jsonOut != "" {
			data, jerr := json.MarshalIndent(res, "", "  ")
			if jerr == nil {
				jerr = os.WriteFile(jsonOut, append(data, '\n'), 0o644)
			}
			if jerr != nil {
				fmt.Fprintf(os.Stderr, "scale: %v\n", jerr)
				return 1
			}
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(os.Stderr, "scale: interrupted")
		return 130
	case err != nil:
		fmt.Fprintf(os.Stderr, "%v\n", err)
		return 1
	case len(res.Problems) > 0:
		return 1
	}
	return 0
}

// checkoutKubeconfig is .cluster/kubeconfig in the nearest directory above the working
// directory that has a go.mod and one, or "" (then client-go's defaults apply).
func checkoutKubeconfig() string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := wd; ; d = filepath.Dir(d) {
		p := filepath.Join(d, ".cluster", "kubeconfig")
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}
