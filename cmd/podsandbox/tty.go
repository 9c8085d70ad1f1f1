package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/term"

	"github.com/podsandbox/podsandbox"
)

// terminal is `exec -t`: the options for a command on a terminal of this terminal's size, resized
// with it (SIGWINCH), and, with -i on a terminal, this terminal in raw mode so that keys reach the
// command as typed (^C included). restore undoes it all and waits for the resize goroutine.
func (c *cli) terminal(ctx context.Context, interactive bool) (opts []podsandbox.ExecOption, restore func(), err error) {
	size := podsandbox.TerminalSize{Rows: 24, Cols: 80}
	out, outTTY := c.stdout.(*os.File)
	outTTY = outTTY && term.IsTerminal(int(out.Fd()))
	if outTTY {
		if w, h, err := term.GetSize(int(out.Fd())); err == nil && w > 0 && h > 0 {
			size = podsandbox.TerminalSize{Rows: uint16(h), Cols: uint16(w)}
		}
	}
	opts = []podsandbox.ExecOption{podsandbox.WithPTY(size)}
	var undo []func()
	if in, ok := c.stdin.(*os.File); ok && interactive && term.IsTerminal(int(in.Fd())) {
		old, err := term.MakeRaw(int(in.Fd()))
		if err != nil {
			return nil, nil, err
		}
		undo = append(undo, func() { _ = term.Restore(int(in.Fd()), old) })
	}
	if outTTY {
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		sizes := make(chan podsandbox.TerminalSize, 1)
		wctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-winch:
					if w, h, err := term.GetSize(int(out.Fd())); err == nil && w > 0 && h > 0 {
						select {
						case sizes <- podsandbox.TerminalSize{Rows: uint16(h), Cols: uint16(w)}:
						case <-wctx.Done():
							return
						}
					}
				case <-wctx.Done():
					return
				}
			}
		})
		opts = append(opts, podsandbox.WithTerminalResize(sizes))
		undo = append(undo, func() { signal.Stop(winch); cancel(); wg.Wait() })
	}
	return opts, func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}, nil
}
