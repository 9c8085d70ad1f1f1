package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/podsandbox/podsandbox"
)

// Telemetry is the service's OpenTelemetry SDK, given to the podsandbox.Client:
//   - its metrics are served on GET /metrics in Prometheus's text format (a registry of its own,
//     not the global one);
//   - its traces are recorded only when a request asks for one (POST /sessions/{user}/exec?trace=1)
//     and printed to out as an indented tree when the request's span ends: the request, the
//     session's GetOrCreate with the warm-pool claim or the pod's Start and its phases, and the
//     command.
type Telemetry struct {
	tp      *sdktrace.TracerProvider
	mp      *sdkmetric.MeterProvider
	metrics http.Handler
}

// traceRequested marks the root span of a request whose trace is to be printed.
const traceRequested = attribute.Key("sessions.trace")

// NewTelemetry makes the providers; Shutdown flushes and stops them.
func NewTelemetry(out io.Writer) (*Telemetry, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	return &Telemetry{
		tp: sdktrace.NewTracerProvider(
			sdktrace.WithSampler(sdktrace.ParentBased(requestedSampler{})),
			sdktrace.WithSyncer(&treePrinter{out: out, pending: map[trace.TraceID][]sdktrace.ReadOnlySpan{}})),
		mp:      sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)),
		metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	}, nil
}

// ClientOptions give a podsandbox.Client these providers.
func (t *Telemetry) ClientOptions() []podsandbox.ClientOption {
	return []podsandbox.ClientOption{podsandbox.WithTracerProvider(t.tp), podsandbox.WithMeterProvider(t.mp)}
}

// Tracer is the tracer of the service's own request spans.
func (t *Telemetry) Tracer() trace.Tracer { return t.tp.Tracer("sessions") }

// Metrics serves the metrics in Prometheus's text format.
func (t *Telemetry) Metrics() http.Handler { return t.metrics }

// Shutdown stops both providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	return errors.Join(t.tp.Shutdown(ctx), t.mp.Shutdown(ctx))
}

// requestedSampler samples a root span only when it carries traceRequested; ParentBased makes its
// children follow it.
type requestedSampler struct{}

func (requestedSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	for _, a := range p.Attributes {
		if a.Key == traceRequested && a.Value.AsBool() {
			return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample}
		}
	}
	return sdktrace.SamplingResult{Decision: sdktrace.Drop}
}

func (requestedSampler) Description() string { return "RequestedOnly" }

// treePrinter is a span exporter that keeps the spans of each trace until its root ends, then
// prints the trace as a tree, children in the order they started.
type treePrinter struct {
	mu      sync.Mutex
	out     io.Writer
	pending map[trace.TraceID][]sdktrace.ReadOnlySpan
}

func (p *treePrinter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range spans {
		id := s.SpanContext().TraceID()
		p.pending[id] = append(p.pending[id], s)
		if !s.Parent().IsValid() {
			p.print(p.pending[id])
			delete(p.pending, id)
		}
	}
	return nil
}

func (p *treePrinter) Shutdown(context.Context) error { return nil }

func (p *treePrinter) print(spans []sdktrace.ReadOnlySpan) {
	slices.SortFunc(spans, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
	children := map[trace.SpanID][]sdktrace.ReadOnlySpan{}
	var root sdktrace.ReadOnlySpan
	for _, s := range spans {
		if !s.Parent().IsValid() {
			root = s
		} else {
			children[s.Parent().SpanID()] = append(children[s.Parent().SpanID()], s)
		}
	}
	// the span attributes the tree prints, in this order, and their short names
	shown := []struct {
		key   attribute.Key
		short string
	}{
		{"sessions.user", "user"}, {"podsandbox.session.outcome", "outcome"}, {"podsandbox.claim.result", "claim"},
		{"k8s.pod.name", "pod"}, {"process.exit.code", "exit"}, {"podsandbox.exec.stdout_bytes", "stdout_bytes"},
		{"error.type", "error"},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "trace %s\n", root.SpanContext().TraceID())
	var walk func(s sdktrace.ReadOnlySpan, depth int)
	walk = func(s sdktrace.ReadOnlySpan, depth int) {
		indent := strings.Repeat("  ", depth+1)
		fmt.Fprintf(&b, "%s%-*s %8s", indent, 28-2*depth, s.Name(), s.EndTime().Sub(s.StartTime()).Round(100*time.Microsecond))
		for _, a := range shown {
			for _, kv := range s.Attributes() {
				if kv.Key == a.key {
					fmt.Fprintf(&b, "  %s=%s", a.short, kv.Value.Emit())
				}
			}
		}
		b.WriteByte('\n')
		if ev := s.Events(); len(ev) > 0 {
			var steps []string
			for _, e := range ev {
				steps = append(steps, fmt.Sprintf("%s +%s", e.Name, e.Time.Sub(s.StartTime()).Round(time.Millisecond)))
			}
			fmt.Fprintf(&b, "%s  phases: %s\n", indent, strings.Join(steps, ", "))
		}
		for _, c := range children[s.SpanContext().SpanID()] {
			walk(c, depth+1)
		}
	}
	walk(root, 0)
	_, _ = io.WriteString(p.out, b.String())
}
