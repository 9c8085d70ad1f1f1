package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// NewLogger returns a logger for the sandboxes that prints their progress as readable lines:
//
//	pod created          0.012s  pab-sandbox-3f2a...
//	pod scheduled        0.020s  pab-sandbox-3f2a...  node=localhost
//	pod started          0.512s  pab-sandbox-3f2a...  image=podsandbox.local/python:3-slim
//	pod ready            0.731s  pab-sandbox-3f2a...
//	sandbox ready        0.731s  pab-sandbox-3f2a...  mode=api ip=10.244.0.17
//
// The times are the library's own "elapsed" (since Start began). Debug records other than the
// pod milestones (for example client-go's stream diagnostics) are printed only when verbose.
func NewLogger(w io.Writer, verbose bool) *slog.Logger {
	return slog.New(&progressHandler{w: w, verbose: verbose, mu: &sync.Mutex{}, quiet: &atomic.Bool{}})
}

// Quiet hides (true) or shows (false) the pod milestones of a logger from NewLogger, keeping one
// "sandbox ready" line per pod: for when pods start in the background (a warm pool refilling)
// while the output tells another story.
func Quiet(l *slog.Logger, quiet bool) {
	if h, ok := l.Handler().(*progressHandler); ok {
		h.quiet.Store(quiet)
	}
}

type progressHandler struct {
	w       io.Writer
	verbose bool
	mu      *sync.Mutex
	quiet   *atomic.Bool
	attrs   []slog.Attr
}

func (h *progressHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= slog.LevelDebug
}

// hidden are the attributes that are noise in a demo (the pod name is shown as a column).
var hidden = []string{"sandbox", "namespace", "uid", "pod", "elapsed", "adopted"}

func (h *progressHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelInfo && !h.verbose && (!strings.HasPrefix(r.Message, "pod ") || h.quiet.Load()) {
		return nil
	}
	var (
		pod, elapsed string
		rest         []string
	)
	add := func(a slog.Attr) {
		switch a.Key {
		case "pod":
			pod = a.Value.String()
		case "elapsed":
			if d, ok := a.Value.Any().(time.Duration); ok {
				elapsed = Elapsed(d)
			} else {
				elapsed = a.Value.String()
			}
		case "adopted":
			if a.Value.Kind() == slog.KindBool && a.Value.Bool() {
				rest = append(rest, "adopted")
			}
		}
		if !slices.Contains(hidden, a.Key) || (h.verbose && a.Key != "pod" && a.Key != "elapsed") {
			rest = append(rest, a.Key+"="+quote(a.Value.String()))
		}
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(func(a slog.Attr) bool { add(a); return true })

	var b strings.Builder
	b.WriteString("    ")
	switch {
	case r.Level >= slog.LevelError:
		b.WriteString("ERROR ")
	case r.Level >= slog.LevelWarn:
		b.WriteString("WARN ")
	}
	if elapsed != "" {
		fmt.Fprintf(&b, "%-18s %7s", r.Message, elapsed)
	} else {
		b.WriteString(r.Message)
	}
	if pod != "" {
		b.WriteString("  " + pod)
	}
	if len(rest) > 0 {
		b.WriteString("  " + strings.Join(rest, " "))
	}
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func quote(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"") {
		return fmt.Sprintf("%q", s)
	}
	return s
}

func (h *progressHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(slices.Clone(h.attrs), as...)
	return &c
}

// WithGroup is not needed by the library's records; groups are flattened.
func (h *progressHandler) WithGroup(string) slog.Handler { return h }
