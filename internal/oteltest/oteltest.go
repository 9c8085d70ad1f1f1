// Package oteltest reads metrics back from an OpenTelemetry SDK reader, for tests that check what
// podsandbox recorded.
package oteltest

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Collect collects r once, failing t on an error.
func Collect(t testing.TB, r sdkmetric.Reader) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

// Int sums the int64 sum or gauge name over the data points whose attributes include want, and
// reports whether there was any such point.
func Int(rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) (int64, bool) {
	var n int64
	found := false
	for _, m := range metrics(rm, name) {
		var pts []metricdata.DataPoint[int64]
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			pts = d.DataPoints
		case metricdata.Gauge[int64]:
			pts = d.DataPoints
		}
		for _, p := range pts {
			if Has(p.Attributes, want...) {
				n += p.Value
				found = true
			}
		}
	}
	return n, found
}

// HistCount sums the counts of the float64 histogram name over the data points whose attributes
// include want.
func HistCount(rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) uint64 {
	var n uint64
	for _, m := range metrics(rm, name) {
		if h, ok := m.Data.(metricdata.Histogram[float64]); ok {
			for _, p := range h.DataPoints {
				if Has(p.Attributes, want...) {
					n += p.Count
				}
			}
		}
	}
	return n
}

// Has reports whether set holds every attribute of want with the same value.
func Has(set attribute.Set, want ...attribute.KeyValue) bool {
	for _, kv := range want {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

func metrics(rm metricdata.ResourceMetrics, name string) []metricdata.Metrics {
	var out []metricdata.Metrics
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				out = append(out, m)
			}
		}
	}
	return out
}
