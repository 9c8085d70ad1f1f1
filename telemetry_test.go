package podsandbox

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podsandbox/podsandbox/internal/oteltest"
)

func TestErrorType(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&StartupError{Pod: "p", Reason: "ErrImageNeverPull"}, "ErrImageNeverPull"},
		{&PathError{Op: "read", Path: "/x", Err: ErrNotFound}, "not_found"},
		{fmt.Errorf("wrapped: %w", ErrSandboxGone), "sandbox_gone"},
		{&EditError{Path: "/x", Old: "a", Count: 2}, "ambiguous_edit"},
		{&FileTooLargeError{Path: "/x"}, "file_too_large"},
		{context.DeadlineExceeded, "deadline_exceeded"},
		{fmt.Errorf("%w: bad", ErrInvalidArgument), "invalid_argument"},
		{errors.New("connection reset"), "error"},
	} {
		if got := errorType(tc.err).Value.AsString(); got != tc.want {
			t.Errorf("errorType(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// spanAttr returns the attribute key of s.
func spanAttr(s sdktrace.ReadOnlySpan, key attribute.Key) attribute.Value {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// TestSessionTelemetry: a manager counts its live sessions (created, replaced, released) and
// traces each GetOrCreate with its outcome.
func TestSessionTelemetry(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	f := &memFactory{failIDs: map[string]error{"bad": errors.New("no room")}}
	m := newManager(t, f, WithManagerTelemetry(tp, mp))
	ctx := t.Context()
	for _, id := range []string{"a", "a", "b", "c"} {
		if _, err := m.GetOrCreate(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.GetOrCreate(ctx, "bad"); err == nil {
		t.Fatal("a failing start made a session")
	}
	if live, _ := oteltest.Int(oteltest.Collect(t, reader), "podsandbox.sessions.live"); live != 3 {
		t.Errorf("sessions.live = %d after 3 sessions, want 3", live)
	}
	if ok, err := m.Release(ctx, "a"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	f.mu.Lock()
	f.made["b"][0].alive.Store(false) // b's pod died: the next call replaces it
	f.mu.Unlock()
	if _, err := m.GetOrCreate(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if live, _ := oteltest.Int(oteltest.Collect(t, reader), "podsandbox.sessions.live"); live != 2 {
		t.Errorf("sessions.live = %d after a release and a replacement, want 2", live)
	}
	if _, err := m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if live, _ := oteltest.Int(oteltest.Collect(t, reader), "podsandbox.sessions.live"); live != 0 {
		t.Errorf("sessions.live = %d after Shutdown, want 0", live)
	}

	var outcomes []string
	for _, s := range spans.Ended() {
		if s.Name() == "podsandbox.GetOrCreate" {
			outcomes = append(outcomes, spanAttr(s, "podsandbox.session.id").AsString()+"="+spanAttr(s, attrOutcome).AsString())
		}
	}
	want := "[a=created a=existing b=created c=created bad=failed b=created]"
	if got := fmt.Sprint(outcomes); got != want {
		t.Errorf("GetOrCreate spans %s, want %s", got, want)
	}
}

// TestReaperTelemetry: a Reaper made by a Client counts its deletions by reason, and a dry run
// counts none.
func TestReaperTelemetry(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "old", Namespace: "ns", UID: "uid-old",
		Labels: map[string]string{LabelManagedBy: ManagedByValue}, Annotations: map[string]string{AnnotationExpiresAt: past}}}
	c, err := NewClient(nil, WithClientset(fakeClient(pod)), WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Reaper("ns")
	r.DryRun = true
	if res, err := r.Reap(t.Context()); err != nil || res.Pods != 1 {
		t.Fatal(res, err)
	}
	if n, ok := oteltest.Int(oteltest.Collect(t, reader), "podsandbox.reaper.deletions"); ok || n != 0 {
		t.Errorf("a dry run counted %d deletions", n)
	}
	r.DryRun = false
	if res, err := r.Reap(t.Context()); err != nil || res.Pods != 1 {
		t.Fatal(res, err)
	}
	if n, _ := oteltest.Int(oteltest.Collect(t, reader), "podsandbox.reaper.deletions", attrReapReason.String("idle")); n != 1 {
		t.Errorf("reaper.deletions{reason=idle} = %d, want 1", n)
	}
}
