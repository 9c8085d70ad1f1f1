package main

import (
	"math"
	"strings"
	"testing"
)

func TestListenURL(t *testing.T) {
	for _, c := range []struct {
		line, want string
		ok         bool
	}{
		{"podsandbox: MCP over streamable HTTP at http://127.0.0.1:40123/", "http://127.0.0.1:40123/", true},
		{"listening on http://127.0.0.1:8090", "http://127.0.0.1:8090/", true},
		{"time=... level=ERROR msg=x", "", false},
		{"http://127.0.0.1:/", "", false},
		{"http://localhost:8090/", "", false},
	} {
		got, ok := listenURL(c.line)
		if got != c.want || ok != c.ok {
			t.Errorf("listenURL(%q) = %q, %v; want %q, %v", c.line, got, ok, c.want, c.ok)
		}
	}
}

func TestStderrTail(t *testing.T) {
	w := newStderrTail()
	// the address arrives split over writes, after another line, and a second one is ignored
	for _, s := range []string{"warming up\npodsandbox: MCP over streamable HTTP at http://127.0.", "0.1:5", "5/\n",
		"again http://127.0.0.1:66/\n"} {
		if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	select {
	case u := <-w.url:
		if u != "http://127.0.0.1:55/" {
			t.Errorf("url %q", u)
		}
	default:
		t.Fatal("no url sent")
	}
	select {
	case u := <-w.url:
		t.Errorf("a second url %q", u)
	default:
	}
	if s := w.String(); !strings.Contains(s, "again") {
		t.Errorf("tail %q lacks the last line", s)
	}

	// the tail stays bounded and keeps the end
	for range 1000 {
		_, _ = w.Write([]byte(strings.Repeat("x", 50) + "\n"))
	}
	_, _ = w.Write([]byte("the last line\n"))
	if len(w.tail) > 2*stderrTailMax {
		t.Errorf("tail grew to %d bytes", len(w.tail))
	}
	if s := w.String(); !strings.HasSuffix(s, "the last line") {
		t.Errorf("tail %q does not end with the last line", s)
	}
}

func TestFormatOverhead(t *testing.T) {
	p50, ci := formatOverhead(0.00123, 0.00091, 0.00152)
	if p50 != "+1.23 ms" || ci != "[+0.91 – +1.52 ms]" {
		t.Errorf("got %q %q", p50, ci)
	}
	p50, ci = formatOverhead(-0.0005, -0.001, 0.0002)
	if p50 != "-0.50 ms" || ci != "[-1.00 – +0.20 ms]" {
		t.Errorf("negative: got %q %q", p50, ci)
	}
	if p50, ci = formatOverhead(math.NaN(), 0, 0); p50 != "-" || ci != "" {
		t.Errorf("NaN: got %q %q", p50, ci)
	}
	if _, ci = formatOverhead(0.001, math.NaN(), math.NaN()); ci != "" {
		t.Errorf("no interval: got %q", ci)
	}
}
