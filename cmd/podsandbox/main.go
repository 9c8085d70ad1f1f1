// Command podsandbox is a kubectl-style command line over the podsandbox library: start a sandbox
// pod, run commands in it, read, search and copy its files, list, delete and reap sandboxes, and
// show warm pools and the images the nodes hold.
//
//	podsandbox run podsandbox.local/busybox:1 --mode api --id demo
//	podsandbox exec demo -- echo hello          # streams output; exits with the command's code
//	podsandbox proc start demo -- ./dev-server  # in the background; prints the process id
//	podsandbox proc logs -f demo p-0123456789ab # from any later invocation
//	echo data | podsandbox exec -i demo -- wc -c
//	podsandbox ls demo /tmp
//	podsandbox cp ./data.csv demo:input/        # and back: podsandbox cp demo:out.bin .
//	podsandbox list -o wide
//	podsandbox rm demo
//	podsandbox reap --dry-run
//	podsandbox pool                             # warm, starting and claimed pods per pool
//	podsandbox images                           # what the nodes can run without a pull
//
// A sandbox made by `run` outlives the command: its pod stays until `rm`, or until a reaper
// (`podsandbox reap`, or any SessionManager with WithReaper) finds it idle past its idle timeout.
// Every command after `run` attaches to the pod by id and creates nothing. Flags follow kubectl:
// --kubeconfig, -n/--namespace, -o json|yaml|wide.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitError carries a command's exit code through cobra: `exec` passes the sandboxed command's
// code on, without a message of its own.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit code %d", e.code) }

// run runs the command line args and returns the process exit code: the sandboxed command's for
// exec, 1 for any other failure (one line on stderr saying what is wrong and what to do).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root, c := newRoot(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if cerr := c.close(ctx); err == nil {
		err = cerr
	}
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	}
	fmt.Fprintf(stderr, "podsandbox: %v\n", err)
	return 1
}
