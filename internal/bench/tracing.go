package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/internal/e2e"
)

// tracingIters is row 10's measured iterations per variant: the overhead looked for is a few
// microseconds on a ~2 ms call, so it takes more samples than row 1.
func (b *bench) tracingIters() int { return 3 * b.opt.execIters }

// rowTracing is row 10: Execute of `true` in HTTP mode (pod IP) through a Client with the
// OpenTelemetry SDK installed (every span exported synchronously to an in-memory exporter, the
// metrics to a manual reader) against one with the default no-op providers, on the same pod,
// interleaved.
func (b *bench) rowTracing(ctx context.Context, blk *Block) error {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer tp.Shutdown(context.WithoutCancel(ctx))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.WithoutCancel(ctx))
	traced, err := podsandbox.NewClient(b.cfg, podsandbox.WithTracerProvider(tp), podsandbox.WithMeterProvider(mp),
		podsandbox.WithClientLogger(b.libLog))
	if err != nil {
		return err
	}
	defer traced.Close(context.WithoutCancel(ctx))

	opts := b.sandboxOptions(podsandbox.ModeHTTP, podsandbox.WithSandboxID("bench-tracing"), podsandbox.WithReach(podsandbox.ReachPodIP))
	plain, err := b.client.NewSandbox(e2e.ImageServer, opts...)
	if err != nil {
		return err
	}
	if err := plain.Start(ctx); err != nil {
		return err
	}
	defer func() {
		_ = plain.Stop(context.WithoutCancel(ctx))
		_ = b.waitPodsGone(context.WithoutCancel(ctx), plain.PodName())
	}()
	tsb, err := traced.NewSandbox(e2e.ImageServer, append(opts, podsandbox.WithDeleteOnStop(false))...)
	if err != nil {
		return err
	}
	if err := tsb.Start(ctx); err != nil { // adopts plain's pod
		return err
	}
	defer tsb.Stop(context.WithoutCancel(ctx))

	exported := 0
	tracedRun := execTrue(tsb)
	off := &variant{name: "no-op providers (default)", run: execTrue(plain)}
	on := &variant{name: "SDK providers", run: func(ctx context.Context) (float64, error) {
		x, err := tracedRun(ctx)
		if n := len(spans.GetSpans()); n >= 500 { // keep the exporter's memory bounded
			exported += n
			spans.Reset()
		}
		return x, err
	}}
	iters := b.tracingIters()
	if err := interleave(ctx, []*variant{off, on}, b.opt.execWarmup, iters, func(i int) {
		if i%100 == 0 {
			b.progress("row 10: %d/%d iterations", i, iters)
		}
	}); err != nil {
		return err
	}
	exported += len(spans.GetSpans())
	if want := b.opt.execWarmup + iters; exported < want {
		return fmt.Errorf("the traced Client exported %d spans for %d Executes: tracing was not on", exported, want)
	}

	// The pod's round trip varies by more than the few microseconds looked for, so this ratio is
	// information; the target is judged on the instrumentation alone, below.
	r, _, _, _ := compare("Execute `true`, HTTP by pod IP, SDK providers", on, off, FormatSeconds, true)
	r.Target, r.Result = "(information)", "-"
	blk.Add(r)
	r, _, _, _ = compare("Execute `true`, HTTP by pod IP, no-op providers (baseline)", off, nil, FormatSeconds, true)
	blk.Add(r)
	blk.Note("one pod, two Clients: the traced one adopts the pod; %d spans exported synchronously (WithSyncer: each span's export is inside the measured call) to an in-memory exporter; metrics recorded to a manual reader", exported)
	blk.Note("difference of the medians: %+.0f µs per Execute", (on.p(50)-off.p(50))*1e6)

	// The instrumentation alone, without the pod's noise: an Execute on a sandbox that was never
	// started fails before any I/O, after its span (with the error recorded) and its histogram
	// record, which is more than a successful call records.
	sdkCost, err := instrumentationCost(ctx, traced)
	if err != nil {
		return err
	}
	noopCost, err := instrumentationCost(ctx, b.client)
	if err != nil {
		return err
	}
	extra := sdkCost - noopCost
	r = Row{Name: "  instrumentation alone, SDK providers (testing.Benchmark)", N: "-", P50: FormatSeconds(sdkCost),
		Baseline: "no-op providers " + FormatSeconds(noopCost), Ratio: fmt.Sprintf("%+.2f%% of Execute", 100*extra/off.p(50)),
		Target: "≤ 3% of Execute", Result: Verdict(extra <= 0.03*off.p(50))}
	blk.Add(r)
	blk.Note("instrumentation alone: per call, on an Execute that fails before any I/O (span, error event, histogram), over the no-op providers' p50 Execute above")
	b.checkErrors(blk, off, on)
	return nil
}

// instrumentationCost is the time per call of Execute on a sandbox of c that was never started:
// everything Execute records, and no I/O.
func instrumentationCost(ctx context.Context, c *podsandbox.Client) (float64, error) {
	sb, err := c.NewSandbox(e2e.ImageServer, podsandbox.WithMode(podsandbox.ModeHTTP), podsandbox.WithSandboxID("bench-never-started"))
	if err != nil {
		return 0, err
	}
	if _, err := sb.Execute(ctx, "true"); !errors.Is(err, podsandbox.ErrNotStarted) {
		return 0, fmt.Errorf("Execute on a sandbox never started: %v, want ErrNotStarted", err)
	}
	res := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			_, _ = sb.Execute(ctx, "true")
		}
	})
	return float64(res.NsPerOp()) / 1e9, nil
}
