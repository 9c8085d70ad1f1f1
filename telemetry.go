package podsandbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// Telemetry. podsandbox emits traces and metrics through the OpenTelemetry API only: it installs
// no SDK and no exporter. By default it uses the global providers (otel.GetTracerProvider and
// otel.GetMeterProvider), which do nothing until the application installs its own, so a program
// that does not use OpenTelemetry pays for a few no-op calls per operation. WithTracerProvider and
// WithMeterProvider give a Client providers of its own instead.
//
// Spans (instrumentation scope "github.com/podsandbox/podsandbox"):
//   - "podsandbox.Start": one per Start, with an event per phase as the pod reaches it ("pod
//     created" or "pod adopted", "scheduled", "image ready", "started", then "ready" in
//     API mode or "server ready" in HTTP mode); attributes k8s.namespace.name, k8s.pod.name,
//     container.image.name, podsandbox.mode, podsandbox.sandbox.id.
//   - "podsandbox.Execute", and "podsandbox.Read", "podsandbox.ReadBytes", "podsandbox.Write",
//     "podsandbox.Edit", "podsandbox.Ls", "podsandbox.Glob", "podsandbox.Grep", "podsandbox.Exists":
//     one per call, with the pod's attributes plus podsandbox.reach (HTTP mode); Execute adds
//     process.exit.code, podsandbox.exec.stdout_bytes, podsandbox.exec.stderr_bytes,
//     podsandbox.exec.truncated and podsandbox.exec.timed_out; Write adds podsandbox.file.bytes.
//     A failed call sets the span's status to Error and error.type.
//   - "podsandbox.GetOrCreate": one per SessionManager.GetOrCreate, with podsandbox.session.id and
//     podsandbox.session.outcome (existing, created, failed); the Start of a new session is its
//     child when the creating call is traced.
//
// Metrics (their attributes are few and bounded: never a pod name or a session id):
//   - podsandbox.start.duration (s, histogram): Start, by podsandbox.mode and error.type.
//   - podsandbox.exec.duration (s, histogram): Execute, by podsandbox.mode and error.type.
//   - podsandbox.file.duration (s, histogram): file operations, by podsandbox.mode,
//     podsandbox.operation and error.type.
//   - podsandbox.pool.warm ({pod}, gauge): ready unclaimed pods of each warm pool of a Client, by
//     podsandbox.pool.name.
//   - podsandbox.pool.claims ({claim}, counter): claims, by podsandbox.pool.name and
//     podsandbox.claim.result: "warm" (the pool's own pod), "shared" (another replica's), "miss"
//     (no warm pod: the session starts cold), "error".
//   - podsandbox.reaper.deletions ({pod}, counter): pods a Reaper deleted, by podsandbox.reap.reason
//     ("idle" or "finished").
//   - podsandbox.sessions.live ({session}, up-down counter): sessions with a started sandbox across
//     the process's SessionManagers.
const instrumentationName = "github.com/podsandbox/podsandbox"

// Attribute keys of podsandbox's own spans and metrics.
const (
	attrMode        = attribute.Key("podsandbox.mode")
	attrReach       = attribute.Key("podsandbox.reach")
	attrSandboxID   = attribute.Key("podsandbox.sandbox.id")
	attrOperation   = attribute.Key("podsandbox.operation")
	attrStdoutBytes = attribute.Key("podsandbox.exec.stdout_bytes")
	attrStderrBytes = attribute.Key("podsandbox.exec.stderr_bytes")
	attrTruncated   = attribute.Key("podsandbox.exec.truncated")
	attrTimedOut    = attribute.Key("podsandbox.exec.timed_out")
	attrFileBytes   = attribute.Key("podsandbox.file.bytes")
	attrPoolName    = attribute.Key("podsandbox.pool.name")
	attrClaimResult = attribute.Key("podsandbox.claim.result")
	attrReapReason  = attribute.Key("podsandbox.reap.reason")
	attrSessionID   = attribute.Key("podsandbox.session.id")
	attrOutcome     = attribute.Key("podsandbox.session.outcome")
)

// WithTracerProvider makes the Client, and every sandbox, pool, manager and reaper made from it,
// create its spans with tp (default: the global provider, a no-op until the application installs
// one).
func WithTracerProvider(tp trace.TracerProvider) ClientOption {
	return func(c *clientConfig) error {
		if tp == nil {
			return fmt.Errorf("%w: WithTracerProvider(nil)", ErrInvalidArgument)
		}
		c.tp = tp
		return nil
	}
}

// WithMeterProvider makes the Client, and everything made from it, record its metrics with mp
// (default: the global provider, a no-op until the application installs one).
func WithMeterProvider(mp metric.MeterProvider) ClientOption {
	return func(c *clientConfig) error {
		if mp == nil {
			return fmt.Errorf("%w: WithMeterProvider(nil)", ErrInvalidArgument)
		}
		c.mp = mp
		return nil
	}
}

// telemetry holds the tracer and the instruments of one Client (or of a SessionManager or Reaper
// made without one).
type telemetry struct {
	tp       trace.TracerProvider
	mp       metric.MeterProvider
	tracer   trace.Tracer
	meter    metric.Meter
	startDur metric.Float64Histogram
	execDur  metric.Float64Histogram
	fileDur  metric.Float64Histogram
	claims   metric.Int64Counter
	reaped   metric.Int64Counter
	live     metric.Int64UpDownCounter
	warm     metric.Int64ObservableGauge

	mu    sync.Mutex
	pools map[*WarmPool]bool // pools whose ready pods the warm gauge reports
	reg   metric.Registration
}

// durationBuckets fit commands of a millisecond to pod starts of a minute.
var durationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

// newTelemetry makes the instruments; nil providers mean the global ones.
func newTelemetry(tp trace.TracerProvider, mp metric.MeterProvider) (*telemetry, error) {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	t := &telemetry{tp: tp, mp: mp, tracer: tp.Tracer(instrumentationName, trace.WithSchemaURL(semconv.SchemaURL)),
		meter: mp.Meter(instrumentationName, metric.WithSchemaURL(semconv.SchemaURL)), pools: map[*WarmPool]bool{}}
	var errs [7]error
	t.startDur, errs[0] = t.meter.Float64Histogram("podsandbox.start.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from Start to a usable sandbox (or to the failure)."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	t.execDur, errs[1] = t.meter.Float64Histogram("podsandbox.exec.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of Execute, transport included."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	t.fileDur, errs[2] = t.meter.Float64Histogram("podsandbox.file.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of a file operation, transport included."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	t.claims, errs[3] = t.meter.Int64Counter("podsandbox.pool.claims", metric.WithUnit("{claim}"),
		metric.WithDescription("Warm-pool claims, by result: warm, shared, miss or error."))
	t.reaped, errs[4] = t.meter.Int64Counter("podsandbox.reaper.deletions", metric.WithUnit("{pod}"),
		metric.WithDescription("Expired pods a Reaper deleted."))
	t.live, errs[5] = t.meter.Int64UpDownCounter("podsandbox.sessions.live", metric.WithUnit("{session}"),
		metric.WithDescription("Sessions with a started sandbox."))
	t.warm, errs[6] = t.meter.Int64ObservableGauge("podsandbox.pool.warm", metric.WithUnit("{pod}"),
		metric.WithDescription("Ready, unclaimed pods of a warm pool."))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, errors.Join(errors.New("podsandbox: OpenTelemetry instruments"), err)
	}
	return t, nil
}

// addPool makes the warm gauge report p until removePool; the gauge's callback is registered while
// at least one pool is open, so a provider never holds on to a closed pool.
func (t *telemetry) addPool(p *WarmPool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.reg == nil {
		reg, err := t.meter.RegisterCallback(t.observeWarm, t.warm)
		if err != nil {
			return errors.Join(errors.New("podsandbox: OpenTelemetry warm-pool gauge"), err)
		}
		t.reg = reg
	}
	t.pools[p] = true
	return nil
}

// removePool stops reporting p.
func (t *telemetry) removePool(p *WarmPool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.pools, p)
	if len(t.pools) == 0 && t.reg != nil {
		_ = t.reg.Unregister() // only fails for a registration of another provider
		t.reg = nil
	}
}

// observeWarm reports each pool name's ready pods, summed over this Client's pools of that name.
func (t *telemetry) observeWarm(_ context.Context, o metric.Observer) error {
	t.mu.Lock()
	pools := make([]*WarmPool, 0, len(t.pools))
	for p := range t.pools {
		pools = append(pools, p)
	}
	t.mu.Unlock()
	byName := map[string]int64{}
	for _, p := range pools {
		byName[p.name] += int64(p.Ready())
	}
	for name, n := range byName {
		o.ObserveInt64(t.warm, n, metric.WithAttributes(attrPoolName.String(name)))
	}
	return nil
}

// errorType is the error.type attribute of err: the reason of a *StartupError, else the name of
// the first sentinel it matches, else "error". The values are few, as metric attributes must be.
func errorType(err error) attribute.KeyValue {
	var se *StartupError
	if errors.As(err, &se) {
		return semconv.ErrorTypeKey.String(se.Reason)
	}
	for _, e := range []struct {
		err  error
		name string
	}{
		{context.DeadlineExceeded, "deadline_exceeded"}, {context.Canceled, "canceled"},
		{ErrSandboxGone, "sandbox_gone"}, {ErrNotStarted, "not_started"}, {ErrStopped, "stopped"},
		{ErrNotFound, "not_found"}, {ErrIsDirectory, "is_directory"}, {ErrNotDirectory, "not_directory"},
		{ErrFileTooLarge, "file_too_large"}, {ErrStringNotFound, "string_not_found"},
		{ErrAmbiguousEdit, "ambiguous_edit"}, {ErrInvalidArgument, "invalid_argument"},
		{ErrOutputIncomplete, "output_incomplete"}, {ErrUnauthorized, "unauthorized"},
		{ErrConflict, "conflict"}, {ErrClientClosed, "client_closed"},
	} {
		if errors.Is(err, e.err) {
			return semconv.ErrorTypeKey.String(e.name)
		}
	}
	return semconv.ErrorTypeKey.String("error")
}

// endSpan sets the span's status from err and ends it.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(errorType(err))
	}
	span.End()
}

// sandboxOp is the span and timer of one Execute or file operation.
type sandboxOp struct {
	s    *KubernetesPodSandbox
	name string
	span trace.Span
	t0   time.Time
	stop func() // ends the operation's pod watchdog (whileAlive), if any
}

// traceOp starts the span of operation name ("Execute", "Read", ...) on s.
func (s *KubernetesPodSandbox) traceOp(ctx context.Context, name string) (context.Context, *sandboxOp) {
	ctx, span := s.tel.tracer.Start(ctx, "podsandbox."+name, trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		span.SetAttributes(s.spanAttrs()...)
	}
	return ctx, &sandboxOp{s: s, name: name, span: span, t0: time.Now()}
}

// end records the operation's duration and ends its span with err (and attrs, when recording).
func (o *sandboxOp) end(ctx context.Context, err error, attrs ...attribute.KeyValue) {
	if o.stop != nil {
		o.stop()
	}
	d := time.Since(o.t0).Seconds()
	mattrs := []attribute.KeyValue{attrMode.String(string(o.s.cfg.mode))}
	if err != nil {
		mattrs = append(mattrs, errorType(err))
	}
	if o.name == "Execute" {
		o.s.tel.execDur.Record(ctx, d, metric.WithAttributes(mattrs...))
	} else {
		o.s.tel.fileDur.Record(ctx, d, metric.WithAttributes(append(mattrs, attrOperation.String(o.name))...))
	}
	if len(attrs) > 0 && o.span.IsRecording() {
		o.span.SetAttributes(attrs...)
	}
	endSpan(o.span, err)
}

// spanAttrs are the attributes every span of s carries.
func (s *KubernetesPodSandbox) spanAttrs() []attribute.KeyValue {
	a := []attribute.KeyValue{
		semconv.K8SNamespaceName(s.cfg.namespace),
		semconv.K8SPodName(s.podName),
		attrSandboxID.String(s.ID()),
		attrMode.String(string(s.cfg.mode)),
	}
	if s.cfg.mode == ModeHTTP {
		a = append(a, attrReach.String(string(s.cfg.reach)))
	}
	return a
}

// execAttrs are the attributes Execute adds to its span.
func execAttrs(r *ExecuteResponse) []attribute.KeyValue {
	if r == nil {
		return nil
	}
	return []attribute.KeyValue{
		semconv.ProcessExitCode(r.ExitCode),
		attrStdoutBytes.Int(len(r.Stdout)),
		attrStderrBytes.Int(len(r.Stderr)),
		attrTruncated.Bool(r.Truncated),
		attrTimedOut.Bool(r.TimedOut),
	}
}
