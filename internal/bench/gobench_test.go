package main

import (
	"strings"
	"testing"
)

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/podsandbox/podsandbox
cpu: AMD EPYC
BenchmarkGetOrCreateLive-2     	 9451882	       126.4 ns/op	       0 B/op	       0 allocs/op
BenchmarkGetOrCreateLive-2     	 9385620	       128.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkCleanupSweep10k-2     	     970	   1234567 ns/op
BenchmarkNoProcs	     100	        15.5 ns/op
BenchmarkBroken-2 	 FAIL
PASS
ok  	github.com/podsandbox/podsandbox	5.123s
`
	got, err := ParseGoBench(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if v := got["BenchmarkGetOrCreateLive"]; len(v) != 2 || v[0] != 126.4 || v[1] != 128 {
		t.Errorf("GetOrCreateLive = %v", v)
	}
	if v := got["BenchmarkCleanupSweep10k"]; len(v) != 1 || v[0] != 1234567 {
		t.Errorf("CleanupSweep10k = %v", v)
	}
	if v := got["BenchmarkNoProcs"]; len(v) != 1 || v[0] != 15.5 {
		t.Errorf("no -N suffix: %v", v)
	}
	if len(got) != 3 {
		t.Errorf("unexpected entries: %v", got)
	}
}
