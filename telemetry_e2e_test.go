//go:build e2e

package podsandbox_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/internal/e2e"
	"github.com/podsandbox/podsandbox/internal/oteltest"
)

// TestTelemetry: on a real pod in each mode, the spans and metrics read back from an in-memory
// exporter match what happened: a Start with its phases in order, an Execute with its exit code
// and byte counts, file operations with their errors, a warm-pool claim inside GetOrCreate, the
// warm gauge, and the live-session count.
func TestTelemetry(t *testing.T) {
	t.Parallel()
	env := e2e.Env(t)
	for _, mode := range []podsandbox.Mode{podsandbox.ModeHTTP, podsandbox.ModeAPI} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t, 3*time.Minute)
			spans := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			c, err := podsandbox.NewClient(env.Config, podsandbox.WithTracerProvider(tp), podsandbox.WithMeterProvider(mp))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := c.Close(context.Background()); err != nil {
					t.Errorf("Client.Close: %v", err)
				}
			})
			opts := managerOpts(env.Namespace, podsandbox.WithMode(mode))

			// One sandbox: Start, Execute, file operations, one of them failing.
			sb, err := c.NewSandbox(modeImage[mode], opts...)
			if err != nil {
				t.Fatal(err)
			}
			if err := sb.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer sb.Stop(context.Background())
			r, err := sb.Execute(ctx, "printf abc; printf de >&2; exit 3")
			if err != nil || r.ExitCode != 3 {
				t.Fatalf("Execute: %+v %v", r, err)
			}
			if _, err := sb.Write(ctx, "t.txt", []byte("hello")); err != nil {
				t.Fatal(err)
			}
			if _, err := sb.Read(ctx, "t.txt", 0, 10); err != nil {
				t.Fatal(err)
			}
			if _, err := sb.Read(ctx, "missing.txt", 0, 10); !errors.Is(err, podsandbox.ErrNotFound) {
				t.Fatalf("Read of a missing file: %v", err)
			}

			start := onlySpan(t, spans, "podsandbox.Start", sb.PodName())
			var events []string
			for _, e := range start.Events() {
				events = append(events, e.Name)
			}
			last := "ready"
			if mode == podsandbox.ModeHTTP {
				last = "server ready"
			}
			if !inOrder(events, "pod created", "scheduled", "image ready", "started", last) {
				t.Errorf("Start events %q: want pod created, scheduled, image ready, started, %s in order", events, last)
			}
			if v := attr(start, "container.image.name").AsString(); v != modeImage[mode] {
				t.Errorf("Start span image %q", v)
			}
			if v := attr(start, "k8s.namespace.name").AsString(); v != env.Namespace {
				t.Errorf("Start span namespace %q", v)
			}
			ex := onlySpan(t, spans, "podsandbox.Execute", sb.PodName())
			for key, want := range map[attribute.Key]int64{"process.exit.code": 3, "podsandbox.exec.stdout_bytes": 3, "podsandbox.exec.stderr_bytes": 2} {
				if got := attr(ex, key).AsInt64(); got != want {
					t.Errorf("Execute span %s = %d, want %d", key, got, want)
				}
			}
			if attr(ex, "podsandbox.mode").AsString() != string(mode) || ex.SpanKind() != trace.SpanKindClient {
				t.Errorf("Execute span mode %q kind %v", attr(ex, "podsandbox.mode").AsString(), ex.SpanKind())
			}
			if w := onlySpan(t, spans, "podsandbox.Write", sb.PodName()); attr(w, "podsandbox.file.bytes").AsInt64() != 5 {
				t.Errorf("Write span bytes %d", attr(w, "podsandbox.file.bytes").AsInt64())
			}
			var failed int
			for _, s := range spansNamed(spans, "podsandbox.Read", sb.PodName()) {
				if s.Status().Code.String() == "Error" {
					failed++
					if v := attr(s, "error.type").AsString(); v != "not_found" {
						t.Errorf("failed Read span error.type %q", v)
					}
				}
			}
			if failed != 1 {
				t.Errorf("%d failed Read spans, want 1", failed)
			}

			// A manager with a warm pool: the gauge sees the warm pod, GetOrCreate claims it.
			f, err := c.Factory(modeImage[mode], opts...)
			if err != nil {
				t.Fatal(err)
			}
			pool := "tel-" + string(mode)
			m := newManager(t, f, podsandbox.WithWarmPool(1, podsandbox.WithPoolName(pool)))
			if err := m.Start(ctx); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "a warm pod", 90*time.Second, func() bool { return m.Pool().Ready() == 1 })
			rm := oteltest.Collect(t, reader)
			if n, _ := oteltest.Int(rm, "podsandbox.pool.warm", attribute.String("podsandbox.pool.name", pool)); n != 1 {
				t.Errorf("pool.warm = %d with one warm pod", n)
			}
			session, err := m.GetOrCreate(ctx, "tel-session-"+string(mode))
			if err != nil {
				t.Fatal(err)
			}
			if r, err := session.Execute(ctx, "true"); err != nil || r.ExitCode != 0 {
				t.Fatalf("session Execute: %+v %v", r, err)
			}
			goc := onlySpan(t, spans, "podsandbox.GetOrCreate", "")
			claim := onlySpan(t, spans, "podsandbox.Claim", "")
			if attr(goc, "podsandbox.session.outcome").AsString() != "created" || attr(claim, "podsandbox.claim.result").AsString() != "warm" {
				t.Errorf("GetOrCreate outcome %q, claim result %q", attr(goc, "podsandbox.session.outcome").AsString(), attr(claim, "podsandbox.claim.result").AsString())
			}
			if claim.Parent().SpanID() != goc.SpanContext().SpanID() {
				t.Error("the claim span is not a child of GetOrCreate's")
			}
			rm = oteltest.Collect(t, reader)
			if n, _ := oteltest.Int(rm, "podsandbox.pool.claims", attribute.String("podsandbox.pool.name", pool), attribute.String("podsandbox.claim.result", "warm")); n != 1 {
				t.Errorf("pool.claims{warm} = %d, want 1", n)
			}
			if n, _ := oteltest.Int(rm, "podsandbox.sessions.live"); n != 1 {
				t.Errorf("sessions.live = %d, want 1", n)
			}
			// Two Executes (the sandbox's and the session's) and two Reads (one failed).
			modeAttr := attribute.String("podsandbox.mode", string(mode))
			if n := oteltest.HistCount(rm, "podsandbox.exec.duration", modeAttr); n != 2 {
				t.Errorf("exec.duration count %d, want 2", n)
			}
			if n := oteltest.HistCount(rm, "podsandbox.file.duration", modeAttr, attribute.String("podsandbox.operation", "Read")); n != 2 {
				t.Errorf("file.duration{Read} count %d, want 2", n)
			}
			if n := oteltest.HistCount(rm, "podsandbox.file.duration", modeAttr, attribute.String("podsandbox.operation", "Read"), attribute.String("error.type", "not_found")); n != 1 {
				t.Errorf("file.duration{Read, not_found} count %d, want 1", n)
			}
			// The sandbox's Start and the pool's (one or two, with the refill) succeeded.
			if n := oteltest.HistCount(rm, "podsandbox.start.duration", modeAttr); n < 2 || n > 3 {
				t.Errorf("start.duration count %d, want 2 or 3", n)
			}
			if ok, err := m.Release(ctx, "tel-session-"+string(mode)); !ok || err != nil {
				t.Fatalf("Release: %v %v", ok, err)
			}
			if n, _ := oteltest.Int(oteltest.Collect(t, reader), "podsandbox.sessions.live"); n != 0 {
				t.Errorf("sessions.live = %d after Release, want 0", n)
			}
		})
	}
}

// spansNamed returns the ended spans called name, of pod when pod is not "".
func spansNamed(r *tracetest.SpanRecorder, name, pod string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range r.Ended() {
		if s.Name() == name && (pod == "" || attr(s, "k8s.pod.name").AsString() == pod) {
			out = append(out, s)
		}
	}
	return out
}

func onlySpan(t *testing.T, r *tracetest.SpanRecorder, name, pod string) sdktrace.ReadOnlySpan {
	t.Helper()
	ss := spansNamed(r, name, pod)
	if len(ss) != 1 {
		t.Fatalf("%d %s spans for pod %q, want 1", len(ss), name, pod)
	}
	return ss[0]
}

func attr(s sdktrace.ReadOnlySpan, key attribute.Key) attribute.Value {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// inOrder reports whether want occur in got in this order (others may come between).
func inOrder(got []string, want ...string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}
