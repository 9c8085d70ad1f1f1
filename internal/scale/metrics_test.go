package scale

import (
	"math"
	"strings"
	"testing"
)

// scrape0 and scrape1 are two scrapes of the API server, in its text format, with two scopes of
// POST pods (summed by the histogram), a status PATCH (a subresource: not counted as PATCH pods)
// and open WATCHes.
const scrape0 = `# HELP apiserver_request_duration_seconds [STABLE] Response latency distribution
# TYPE apiserver_request_duration_seconds histogram
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="POST",version="v1",le="0.005"} 10
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="POST",version="v1",le="0.025"} 20
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="POST",version="v1",le="+Inf"} 20
apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="POST",version="v1"} 0.2
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="POST",version="v1"} 20
apiserver_longrunning_requests{component="apiserver",group="",resource="pods",scope="namespace",subresource="",verb="WATCH",version="v1"} 2
apiserver_longrunning_requests{component="apiserver",group="",resource="pods",scope="cluster",subresource="",verb="WATCH",version="v1"} 5
apiserver_flowcontrol_rejected_requests_total{flow_schema="global-default",priority_level="global-default",reason="queue-full"} 1
`

const scrape1 = `apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="POST",version="v1",le="0.005"} 10
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="POST",version="v1",le="0.025"} 100
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="POST",version="v1",le="+Inf"} 120
apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="POST",version="v1"} 3.4
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="POST",version="v1"} 120
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1",le="0.005"} 0
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1",le="0.025"} 0
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1",le="+Inf"} 0
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1"} 0
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="status",verb="PATCH",version="v1",le="0.005"} 50
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="status",verb="PATCH",version="v1",le="+Inf"} 50
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="status",verb="PATCH",version="v1"} 50
apiserver_longrunning_requests{component="apiserver",group="",resource="pods",scope="namespace",subresource="",verb="WATCH",version="v1"} 3
apiserver_longrunning_requests{component="apiserver",group="",resource="pods",scope="cluster",subresource="",verb="WATCH",version="v1"} 5
apiserver_flowcontrol_rejected_requests_total{flow_schema="global-default",priority_level="global-default",reason="queue-full"} 4
etcd_request_duration_seconds_count{operation="get",type="*core.Pod"} 7
`

func parse(t *testing.T, s string) Metrics {
	t.Helper()
	m, err := ParseMetrics([]byte(s), metricLatency, metricLongRunning, metricRejected)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseMetrics(t *testing.T) {
	m, err := ParseMetrics([]byte(`# a comment
x_total{a="1",b="with \"quotes\", a comma and a \\ backslash",c="new\nline"} 3 1700000000000
y 2.5e-3

z{} +Inf
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 3 {
		t.Fatalf("%d samples, want 3: %+v", len(m), m)
	}
	if m[0].Name != "x_total" || m[0].Value != 3 || m[0].Labels["a"] != "1" ||
		m[0].Labels["b"] != `with "quotes", a comma and a \ backslash` || m[0].Labels["c"] != "new\nline" {
		t.Errorf("x_total = %+v", m[0])
	}
	if m[1].Name != "y" || m[1].Value != 0.0025 || len(m[1].Labels) != 0 {
		t.Errorf("y = %+v", m[1])
	}
	if m[2].Name != "z" || !math.IsInf(m[2].Value, 1) {
		t.Errorf("z = %+v", m[2])
	}
	for _, bad := range []string{`x{a="1} 2`, `x{a=1} 2`, `x`, `x{a="1"}`, `x{a="1"} notanumber`} {
		if _, err := ParseMetrics([]byte(bad)); err == nil {
			t.Errorf("ParseMetrics(%q) succeeded", bad)
		}
	}
	// Prefixes keep only what is asked for.
	if m := parse(t, scrape1); m.Sum("etcd_request_duration_seconds_count", nil) != 0 || len(m) == 0 {
		t.Errorf("prefix filter kept etcd or dropped everything: %d samples", len(m))
	}
}

func TestHistogramDeltaAndQuantile(t *testing.T) {
	before, after := parse(t, scrape0), parse(t, scrape1)
	post := Match{"verb": "POST", "resource": "pods", "subresource": ""}
	h := after.Histogram(metricLatency, post).Sub(before.Histogram(metricLatency, post))
	if h.Count != 100 || math.Abs(h.Sum-3.2) > 1e-9 {
		t.Fatalf("delta count %v sum %v, want 100 and 3.2", h.Count, h.Sum)
	}
	if len(h.Bounds) != 3 || h.Counts[0] != 0 || h.Counts[1] != 80 || h.Counts[2] != 100 {
		t.Fatalf("delta buckets %v %v", h.Bounds, h.Counts)
	}
	// p50: rank 50 of 100 in the bucket (0.005, 0.025] holding 80: 0.005 + 0.02*50/80.
	if got, want := h.Quantile(0.5), 0.005+0.02*50/80; math.Abs(got-want) > 1e-12 {
		t.Errorf("p50 = %v, want %v", got, want)
	}
	// p99 falls in +Inf: the largest finite bound.
	if got := h.Quantile(0.99); got != 0.025 {
		t.Errorf("p99 = %v, want 0.025", got)
	}
	if got := h.Mean(); math.Abs(got-0.032) > 1e-12 {
		t.Errorf("mean = %v", got)
	}
	var empty Histogram
	if !math.IsNaN(empty.Quantile(0.5)) || !math.IsNaN(empty.Mean()) {
		t.Error("an empty histogram has a quantile or a mean")
	}
	first := Histogram{Bounds: []float64{0.1, math.Inf(1)}, Counts: []float64{4, 4}, Count: 4}
	if got := first.Quantile(0.5); math.Abs(got-0.05) > 1e-12 {
		t.Errorf("p50 in the first bucket = %v, want 0.05 (interpolated from 0)", got)
	}
}

func TestPodLatenciesWatchesRejected(t *testing.T) {
	before, after := parse(t, scrape0), parse(t, scrape1)
	ls := podLatencies(before, after)
	if len(ls) != 1 || ls[0].Verb != "POST" || ls[0].Count != 100 {
		t.Fatalf("podLatencies = %+v, want only POST ×100 (the status PATCHes are a subresource)", ls)
	}
	if got := podWatches(after) - podWatches(before); got != 1 {
		t.Errorf("namespaced pod WATCH delta = %v, want 1", got)
	}
	if got := rejected(after) - rejected(before); got != 3 {
		t.Errorf("rejected delta = %v, want 3", got)
	}
	if s := ServerString(ls); !strings.HasPrefix(s, "POST 100× mean 32.0 ms p50 17.5 ms") {
		t.Errorf("ServerString = %q", s)
	}
}
