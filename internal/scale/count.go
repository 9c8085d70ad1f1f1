package scale

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Counter counts the API requests that pass through it, by verb and resource as the API server
// names them ("POST pods", "LIST pods", "WATCH pods", "PATCH pods", "DELETE pods", "GET
// pods/log", "LIST leases.coordination.k8s.io"), the status codes of their responses, and the
// most WATCH streams of a resource that were open at once. Wrap a Client's transport with it
// (podsandbox.WithClientTransportWrapper(counter.Wrap)) to see what each library call costs the
// API server. It is safe for concurrent use.
type Counter struct {
	mu      sync.Mutex
	counts  Counts
	watches map[string]int64 // WATCH streams open now, by resource
}

// Counts is a snapshot of a Counter, or the difference of two.
type Counts struct {
	// Requests by "VERB resource".
	Requests map[string]int64 `json:"requests"`
	// Status counts responses by HTTP status code; 0 is a request that got no response.
	Status map[int]int64 `json:"status"`
	// WatchPeak is the most WATCH streams of each resource that were open at once: a watch
	// that the server ended and the client started again counts once, two at a time count two.
	WatchPeak map[string]int64 `json:"watch_peak,omitempty"`
}

// Wrap returns rt with every request counted; it fits WithClientTransportWrapper.
func (c *Counter) Wrap(rt http.RoundTripper) http.RoundTripper {
	return &countingTransport{c: c, next: rt}
}

type countingTransport struct {
	c    *Counter
	next http.RoundTripper
}

// WrappedRoundTripper lets client-go reach the transport underneath (to close its idle
// connections when a Client closes).
func (t *countingTransport) WrappedRoundTripper() http.RoundTripper { return t.next }

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	verb, res := Classify(r.Method, r.URL)
	resp, err := t.next.RoundTrip(r)
	code := 0
	if err == nil {
		code = resp.StatusCode
	}
	t.c.add(verb+" "+res, code)
	if verb == "WATCH" && err == nil && code/100 == 2 {
		t.c.watch(res, 1)
		resp.Body = &watchBody{ReadCloser: resp.Body, done: func() { t.c.watch(res, -1) }}
	}
	return resp, err
}

// watchBody is a WATCH response's stream: the watch is open until it is closed.
type watchBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *watchBody) Close() error {
	b.once.Do(b.done)
	return b.ReadCloser.Close()
}

func (c *Counter) init() {
	if c.counts.Requests == nil {
		c.counts = Counts{Requests: map[string]int64{}, Status: map[int]int64{}, WatchPeak: map[string]int64{}}
		c.watches = map[string]int64{}
	}
}

func (c *Counter) add(key string, code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	c.counts.Requests[key]++
	c.counts.Status[code]++
}

// watch records a WATCH stream of resource opening (+1) or closing (-1).
func (c *Counter) watch(resource string, d int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	c.watches[resource] += d
	c.counts.WatchPeak[resource] = max(c.counts.WatchPeak[resource], c.watches[resource])
}

// Snapshot returns the counts so far.
func (c *Counter) Snapshot() Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Counts{Requests: maps.Clone(c.counts.Requests), Status: maps.Clone(c.counts.Status), WatchPeak: maps.Clone(c.counts.WatchPeak)}
}

// Sub returns a minus b, keeping only the keys whose difference is not zero. The watch peaks are
// a's: a peak has no difference.
func (a Counts) Sub(b Counts) Counts {
	d := Counts{Requests: map[string]int64{}, Status: map[int]int64{}, WatchPeak: maps.Clone(a.WatchPeak)}
	for k, v := range a.Requests {
		if v -= b.Requests[k]; v != 0 {
			d.Requests[k] = v
		}
	}
	for k, v := range a.Status {
		if v -= b.Status[k]; v != 0 {
			d.Status[k] = v
		}
	}
	return d
}

// Add returns a plus b; the watch peaks add up too (the streams of two clients, each its peak).
func (a Counts) Add(b Counts) Counts {
	s := Counts{Requests: map[string]int64{}, Status: map[int]int64{}, WatchPeak: map[string]int64{}}
	maps.Copy(s.Requests, a.Requests)
	maps.Copy(s.Status, a.Status)
	maps.Copy(s.WatchPeak, a.WatchPeak)
	for k, v := range b.WatchPeak {
		s.WatchPeak[k] += v
	}
	for k, v := range b.Requests {
		s.Requests[k] += v
	}
	for k, v := range b.Status {
		s.Status[k] += v
	}
	return s
}

// Total returns the number of requests.
func (a Counts) Total() int64 {
	var n int64
	for _, v := range a.Requests {
		n += v
	}
	return n
}

// Keys returns the request keys, most frequent first (then by name).
func (a Counts) Keys() []string {
	keys := slices.Collect(maps.Keys(a.Requests))
	slices.SortFunc(keys, func(x, y string) int {
		if a.Requests[x] != a.Requests[y] {
			return int(a.Requests[y] - a.Requests[x])
		}
		return strings.Compare(x, y)
	})
	return keys
}

// PerOp formats the requests per operation, most frequent first: "1.00 POST pods, 0.02 GET pods"
// (per n operations; requests rarer than once in 10 000 operations are summed up as "other").
func (a Counts) PerOp(n int) string {
	if n <= 0 {
		return "-"
	}
	var parts []string
	var other int64
	for _, k := range a.Keys() {
		v := a.Requests[k]
		if float64(v)/float64(n) < 1e-4 {
			other += v
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s", perOp(v, n), k))
	}
	if other > 0 {
		parts = append(parts, fmt.Sprintf("%s other", perOp(other, n)))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// perOp formats v/n with two decimals, or as "v/n" when that would print 0.00.
func perOp(v int64, n int) string {
	if r := float64(v) / float64(n); r >= 0.005 {
		return fmt.Sprintf("%.2f", r)
	}
	return fmt.Sprintf("%d/%d", v, n)
}

// Errors returns how many responses were not 2xx (or no response at all), and how many of
// them were 429 (throttled).
func (a Counts) Errors() (failed, throttled int64) {
	for code, v := range a.Status {
		if code < 200 || code > 299 {
			failed += v
		}
	}
	return failed, a.Status[http.StatusTooManyRequests]
}

// Classify names a request to the API server by verb and resource, as the server's own metrics
// do: a GET of a collection is LIST, or WATCH with watch=true; a DELETE of a collection is
// DELETECOLLECTION; PUT is PUT; subresources are "resource/sub"; resources of a named API group
// are "resource.group". A path outside /api and /apis is returned as it is with the method, e.g.
// ("GET", "/metrics").
func Classify(method string, u *url.URL) (verb, resource string) {
	verb = strings.ToUpper(method)
	p := strings.Trim(u.Path, "/")
	seg := strings.Split(p, "/")
	var group string
	switch {
	case len(seg) >= 2 && seg[0] == "api":
		seg = seg[2:] // api/v1
	case len(seg) >= 3 && seg[0] == "apis":
		group, seg = seg[1], seg[3:] // apis/group/version
	default:
		return verb, "/" + p
	}
	var res, name, sub string
	switch {
	case len(seg) >= 3 && seg[0] == "namespaces":
		res = seg[2]
		if len(seg) >= 4 {
			name = seg[3]
		}
		if len(seg) >= 5 {
			sub = seg[4]
		}
	case len(seg) >= 1 && seg[0] != "":
		res = seg[0]
		if len(seg) >= 2 {
			name = seg[1]
		}
		if len(seg) >= 3 {
			sub = seg[2]
		}
	default:
		return verb, "/" + p // discovery: /api/v1, /apis/g/v
	}
	if group != "" {
		res += "." + group
	}
	if sub != "" {
		res += "/" + sub
	}
	if name == "" {
		switch verb {
		case http.MethodGet:
			verb = "LIST"
			if w := u.Query().Get("watch"); w == "true" || w == "1" {
				verb = "WATCH"
			}
		case http.MethodDelete:
			verb = "DELETECOLLECTION"
		}
	}
	return verb, res
}
