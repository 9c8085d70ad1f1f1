package scale

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"k8s.io/client-go/kubernetes"
)

// The API server's own metrics this package reads (from its /metrics, which the cluster admin
// may read).
const (
	// metricLatency is the histogram of request latencies, labelled verb, group, version,
	// resource, subresource, scope, component and dry_run. WATCH and CONNECT are not in it.
	metricLatency = "apiserver_request_duration_seconds"
	// metricLongRunning is the gauge of requests open now that are long-running (WATCH,
	// CONNECT), labelled like the histogram.
	metricLongRunning = "apiserver_longrunning_requests"
	// metricRejected counts requests API Priority and Fairness rejected with 429.
	metricRejected = "apiserver_flowcontrol_rejected_requests_total"
)

// Sample is one line of the Prometheus text format: a metric name, its labels and a value.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Metrics is a parsed scrape.
type Metrics []Sample

// ParseMetrics parses the Prometheus text exposition format, keeping the samples whose name
// starts with one of prefixes (all when none is given). Comments and blank lines are skipped;
// a timestamp after the value is ignored.
func ParseMetrics(data []byte, prefixes ...string) (Metrics, error) {
	var out Metrics
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if len(prefixes) > 0 && !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(line, p) }) {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: %w", n, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func parseSample(line string) (Sample, error) {
	s := Sample{Labels: map[string]string{}}
	i := strings.IndexAny(line, "{ \t")
	if i <= 0 {
		return s, fmt.Errorf("no value in %q", line)
	}
	s.Name, line = line[:i], line[i:]
	if line[0] == '{' {
		line = line[1:]
		for {
			line = strings.TrimLeft(line, " \t,")
			if line == "" {
				return s, fmt.Errorf("unterminated labels")
			}
			if line[0] == '}' {
				line = line[1:]
				break
			}
			eq := strings.IndexByte(line, '=')
			if eq <= 0 || len(line) < eq+2 || line[eq+1] != '"' {
				return s, fmt.Errorf("bad label in %q", line)
			}
			key := strings.TrimSpace(line[:eq])
			val, rest, err := unquote(line[eq+2:])
			if err != nil {
				return s, err
			}
			s.Labels[key], line = val, rest
		}
	}
	f := strings.Fields(line)
	if len(f) == 0 {
		return s, fmt.Errorf("no value for %s", s.Name)
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return s, fmt.Errorf("value of %s: %w", s.Name, err)
	}
	s.Value = v
	return s, nil
}

// unquote reads a label value up to its closing quote (the opening one already consumed),
// resolving \\, \" and \n, and returns the rest of the line.
func unquote(s string) (val, rest string, err error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:], nil
		case '\\':
			if i+1 == len(s) {
				return "", "", fmt.Errorf("unterminated label value")
			}
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			default:
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", fmt.Errorf("unterminated label value")
}

// Match is a label filter: every key must have the value (an empty value matches a missing
// label too).
type Match map[string]string

func (m Match) ok(l map[string]string) bool {
	for k, v := range m {
		if l[k] != v {
			return false
		}
	}
	return true
}

// Sum adds the values of the samples called name whose labels match.
func (ms Metrics) Sum(name string, m Match) float64 {
	var v float64
	for _, s := range ms {
		if s.Name == name && m.ok(s.Labels) {
			v += s.Value
		}
	}
	return v
}

// Histogram is a cumulative histogram: bucket upper bounds (ascending, the last +Inf) with the
// number of observations at or below each, and the count and sum of all observations.
type Histogram struct {
	Bounds []float64
	Counts []float64
	Count  float64
	Sum    float64
}

// Histogram adds up the series of the histogram name whose labels match (all verbs of a
// resource, for example, or one verb over every scope).
func (ms Metrics) Histogram(name string, m Match) Histogram {
	byLE := map[float64]float64{}
	var h Histogram
	for _, s := range ms {
		if !m.ok(s.Labels) {
			continue
		}
		switch s.Name {
		case name + "_bucket":
			le, err := strconv.ParseFloat(s.Labels["le"], 64)
			if err == nil {
				byLE[le] += s.Value
			}
		case name + "_count":
			h.Count += s.Value
		case name + "_sum":
			h.Sum += s.Value
		}
	}
	for le := range byLE {
		h.Bounds = append(h.Bounds, le)
	}
	slices.Sort(h.Bounds)
	for _, le := range h.Bounds {
		h.Counts = append(h.Counts, byLE[le])
	}
	return h
}

// Sub returns the observations of h that b does not have (h scraped after b). A bound missing in
// b counts as zero there.
func (h Histogram) Sub(b Histogram) Histogram {
	d := Histogram{Count: h.Count - b.Count, Sum: h.Sum - b.Sum}
	for i, le := range h.Bounds {
		c := h.Counts[i]
		if j, ok := slices.BinarySearch(b.Bounds, le); ok {
			c -= b.Counts[j]
		}
		d.Bounds = append(d.Bounds, le)
		d.Counts = append(d.Counts, c)
	}
	return d
}

// Mean is Sum/Count, NaN without observations.
func (h Histogram) Mean() float64 {
	if h.Count <= 0 {
		return math.NaN()
	}
	return h.Sum / h.Count
}

// Quantile estimates the q-quantile (0 < q < 1) as Prometheus's histogram_quantile does: it finds
// the bucket holding the rank and interpolates linearly inside it (from 0 for the first bucket).
// A rank in the +Inf bucket returns the largest finite bound. NaN without observations.
func (h Histogram) Quantile(q float64) float64 {
	if len(h.Counts) == 0 {
		return math.NaN()
	}
	total := h.Counts[len(h.Counts)-1]
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	for i, c := range h.Counts {
		if c < rank {
			continue
		}
		if math.IsInf(h.Bounds[i], 1) {
			if i == 0 {
				return math.NaN()
			}
			return h.Bounds[i-1]
		}
		lo, below := 0.0, 0.0
		if i > 0 {
			lo, below = h.Bounds[i-1], h.Counts[i-1]
		}
		if c == below {
			return h.Bounds[i]
		}
		return lo + (h.Bounds[i]-lo)*(rank-below)/(c-below)
	}
	return h.Bounds[len(h.Bounds)-1]
}

// Scrape reads the API server's /metrics through cs (which must be allowed to: the cluster
// admin is), keeping the metrics this package uses.
func Scrape(ctx context.Context, cs kubernetes.Interface) (Metrics, error) {
	data, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the API server's /metrics: %w", err)
	}
	return ParseMetrics(data, metricLatency, metricLongRunning, metricRejected)
}

// ServerLatency is the API server's own latency for one verb on pods between two scrapes, from
// its histogram (so p50 and p99 are interpolated inside its buckets: 5, 25, 50, 100, 200, 400,
// 600, 800 ms, 1 s, ...).
type ServerLatency struct {
	Verb  string  `json:"verb"`
	Count float64 `json:"count"`
	Mean  float64 `json:"mean_s"`
	P50   float64 `json:"p50_s"`
	P99   float64 `json:"p99_s"`
}

// podVerbs are the verbs on pods whose server-side latency the scenarios report.
var podVerbs = []string{"POST", "PATCH", "DELETE", "LIST", "GET"}

// podLatencies returns the latency of each verb on pods (no subresource; every scope) that was
// observed between before and after; verbs with no request are left out.
func podLatencies(before, after Metrics) []ServerLatency {
	var out []ServerLatency
	for _, v := range podVerbs {
		m := Match{"verb": v, "group": "", "resource": "pods", "subresource": ""}
		h := after.Histogram(metricLatency, m).Sub(before.Histogram(metricLatency, m))
		if h.Count < 1 {
			continue
		}
		out = append(out, ServerLatency{Verb: v, Count: h.Count, Mean: h.Mean(), P50: h.Quantile(0.5), P99: h.Quantile(0.99)})
	}
	return out
}

// podWatches is the number of namespaced pod WATCHes open on the server (every client's).
func podWatches(m Metrics) float64 {
	return m.Sum(metricLongRunning, Match{"verb": "WATCH", "group": "", "resource": "pods", "scope": "namespace"})
}

// rejected is the number of requests API Priority and Fairness rejected so far.
func rejected(m Metrics) float64 { return m.Sum(metricRejected, nil) }
