package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"golang.org/x/net/http2"

	"github.com/podsandbox/podsandbox/internal/wire"
)

// MaxStdioToken bounds the token line that opens a stdio session.
const MaxStdioToken = 4096

// ServeStdio serves the routes as cleartext HTTP/2 over one byte stream: r carries the client's
// frames, w the server's. This is the agent form of the server: a client that can only run a
// process in the container (a pods/exec stream) talks to it through that process's stdin and
// stdout, with HTTP/2 multiplexing concurrent requests over the one stream.
//
// The first line on r is the token (never an argument, which the sandbox's processes could read
// from /proc); the routes check it as over TCP. When r ends or fails, ServeStdio kills the
// process group of every command still running, but for durable execs (with a request id): it
// returns when they have ended by themselves and recorded their ends, so that a client whose
// stream broke re-attaches to them through another session (see Drain). It returns at once when
// ctx ends, killing every command and closing r and w (which must then unblock their reads and
// writes). Nothing but HTTP/2 frames is written to w.
func ServeStdio(ctx context.Context, cfg Config, r io.ReadCloser, w io.WriteCloser) error {
	br := bufio.NewReaderSize(r, 64<<10)
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return errors.New("stdio: token line too long")
		}
		return errors.New("stdio: no token line: " + err.Error())
	}
	if len(line) > MaxStdioToken {
		return errors.New("stdio: token line too long")
	}
	cfg.Token = strings.TrimRight(string(line), "\r\n")
	srv, err := New(cfg)
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h2 := &http2.Server{MaxConcurrentStreams: 1000}
	served := make(chan struct{})
	go func() {
		defer close(served)
		h2.ServeConn(&wire.StreamConn{R: br, W: w}, &http2.ServeConnOpts{
			Handler:    srv,
			BaseConfig: &http.Server{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)},
		})
	}()
	select {
	case <-served:
		srv.Drain(ctx)
	case <-ctx.Done():
		srv.Shutdown()
		_ = r.Close()
		_ = w.Close()
		<-served
		// The killed durable execs record their ends at once.
		wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Wait(wctx)
	}
	return nil
}
