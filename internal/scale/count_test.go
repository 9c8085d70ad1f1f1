package scale

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		method, url    string
		verb, resource string
	}{
		{"POST", "/api/v1/namespaces/ns/pods", "POST", "pods"},
		{"GET", "/api/v1/namespaces/ns/pods/p", "GET", "pods"},
		{"GET", "/api/v1/namespaces/ns/pods?labelSelector=a%3Db", "LIST", "pods"},
		{"GET", "/api/v1/namespaces/ns/pods?watch=true&resourceVersion=5", "WATCH", "pods"},
		{"GET", "/api/v1/namespaces/ns/pods?watch=1", "WATCH", "pods"},
		{"GET", "/api/v1/pods?watch=false", "LIST", "pods"},
		{"PATCH", "/api/v1/namespaces/ns/pods/p", "PATCH", "pods"},
		{"PATCH", "/api/v1/namespaces/ns/pods/p/status", "PATCH", "pods/status"},
		{"POST", "/api/v1/namespaces/ns/pods/p/exec?command=true", "POST", "pods/exec"},
		{"DELETE", "/api/v1/namespaces/ns/pods/p", "DELETE", "pods"},
		{"DELETE", "/api/v1/namespaces/ns/pods", "DELETECOLLECTION", "pods"},
		{"GET", "/api/v1/namespaces/ns", "GET", "namespaces"},
		{"GET", "/api/v1/nodes", "LIST", "nodes"},
		{"PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1", "PUT", "leases.coordination.k8s.io"},
		{"GET", "/apis/events.k8s.io/v1/events?watch=true", "WATCH", "events.events.k8s.io"},
		{"GET", "/metrics", "GET", "/metrics"},
		{"GET", "/version", "GET", "/version"},
		{"GET", "/api/v1", "GET", "/api/v1"},
		{"GET", "/apis/apps/v1", "GET", "/apis/apps/v1"},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		verb, res := Classify(tt.method, u)
		if verb != tt.verb || res != tt.resource {
			t.Errorf("Classify(%s %s) = %s %s, want %s %s", tt.method, tt.url, verb, res, tt.verb, tt.resource)
		}
	}
}

func TestCounterCountsConcurrentRequests(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPatch {
			w.WriteHeader(http.StatusConflict)
		}
	}))
	defer srv.Close()
	var c Counter
	client := &http.Client{Transport: c.Wrap(http.DefaultTransport)}
	before := c.Snapshot()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for _, m := range []string{http.MethodPost, http.MethodPatch} {
				req, _ := http.NewRequest(m, srv.URL+"/api/v1/namespaces/ns/pods/p", nil)
				if m == http.MethodPost {
					req, _ = http.NewRequest(m, srv.URL+"/api/v1/namespaces/ns/pods", nil)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	d := c.Snapshot().Sub(before)
	if d.Requests["POST pods"] != 20 || d.Requests["PATCH pods"] != 20 || d.Total() != 40 {
		t.Errorf("requests = %v, want 20 POST pods and 20 PATCH pods", d.Requests)
	}
	if d.Status[200] != 20 || d.Status[409] != 20 {
		t.Errorf("status = %v, want 20×200 and 20×409", d.Status)
	}
	if failed, throttled := d.Errors(); failed != 20 || throttled != 0 {
		t.Errorf("Errors() = %d, %d; want 20, 0", failed, throttled)
	}

	// A request that gets no response is counted with status 0.
	srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/nodes", nil)
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("request to a closed server succeeded")
	}
	if s := c.Snapshot(); s.Status[0] != 1 || s.Requests["LIST nodes"] != 1 {
		t.Errorf("after a failed request: %v %v", s.Requests, s.Status)
	}
}

func TestCountsArithmetic(t *testing.T) {
	a := Counts{Requests: map[string]int64{"POST pods": 10, "WATCH pods": 1}, Status: map[int]int64{201: 10, 200: 1}}
	b := Counts{Requests: map[string]int64{"POST pods": 4, "WATCH pods": 1}, Status: map[int]int64{201: 4, 200: 1}}
	d := a.Sub(b)
	if len(d.Requests) != 1 || d.Requests["POST pods"] != 6 || len(d.Status) != 1 || d.Status[201] != 6 {
		t.Errorf("Sub = %+v", d)
	}
	s := d.Add(b)
	if s.Requests["POST pods"] != 10 || s.Requests["WATCH pods"] != 1 || s.Status[200] != 1 {
		t.Errorf("Add = %+v", s)
	}
	if z := (Counts{}).Add(b); z.Total() != 5 {
		t.Errorf("zero.Add = %+v", z)
	}
	if d.Requests["POST pods"] != 6 {
		t.Error("Add modified its receiver")
	}
}

func TestPerOp(t *testing.T) {
	c := Counts{Requests: map[string]int64{"POST pods": 5000, "WATCH pods": 1, "GET pods": 100, "LIST pods": 5000 / 20000}}
	if got, want := c.PerOp(5000), "1.00 POST pods, 0.02 GET pods, 1/5000 WATCH pods"; got != want {
		t.Errorf("PerOp = %q, want %q", got, want)
	}
	c = Counts{Requests: map[string]int64{"POST pods": 100000, "WATCH pods": 1, "LIST pods": 2}}
	if got, want := c.PerOp(100000), "1.00 POST pods, 3/100000 other"; got != want {
		t.Errorf("PerOp = %q, want %q", got, want)
	}
	if got := (Counts{}).PerOp(3); got != "none" {
		t.Errorf("PerOp of nothing = %q", got)
	}
	if got := c.PerOp(0); got != "-" {
		t.Errorf("PerOp(0) = %q", got)
	}
}

func TestCounterWatchPeak(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"type":"ADDED"}`))
	}))
	defer srv.Close()
	var c Counter
	client := &http.Client{Transport: c.Wrap(http.DefaultTransport)}
	watch := func() *http.Response {
		t.Helper()
		resp, err := client.Get(srv.URL + "/api/v1/namespaces/ns/pods?watch=true")
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	a, b := watch(), watch() // two streams open at once
	a.Body.Close()
	a.Body.Close() // a second Close does not count twice
	b.Body.Close()
	watch().Body.Close() // one more, after the others ended: not at once
	s := c.Snapshot()
	if s.WatchPeak["pods"] != 2 || s.Requests["WATCH pods"] != 3 {
		t.Errorf("peak %d, %d WATCH requests; want 2 and 3", s.WatchPeak["pods"], s.Requests["WATCH pods"])
	}
	if sum := s.Add(s); sum.WatchPeak["pods"] != 4 {
		t.Errorf("Add: peak %d, want 4 (two clients' peaks)", sum.WatchPeak["pods"])
	}
	if d := s.Sub(s); d.WatchPeak["pods"] != 2 {
		t.Errorf("Sub: peak %d, want the minuend's 2", d.WatchPeak["pods"])
	}
}
