package podsandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestMarkerWriter(t *testing.T) {
	mk := "\x1e~psbxMARK~"
	for _, chunk := range []int{1, 2, 3, 7, 1000} {
		var out bytes.Buffer
		ended := 0
		m := &markerWriter{w: &out, marker: []byte(mk), status: 3, onEnd: func() { ended++ }}
		in := "hello\x1e~psb world" + mk + "042" + "late output from a background child"
		for i := 0; i < len(in); i += chunk {
			m.Write([]byte(in[i:min(i+chunk, len(in))]))
		}
		if out.String() != "hello\x1e~psb world" || string(m.statusBytes) != "042" || !m.seen() || ended != 1 {
			t.Errorf("chunk %d: out %q status %q seen %v ended %d", chunk, out.String(), m.statusBytes, m.seen(), ended)
		}
	}
	var out bytes.Buffer
	m := &markerWriter{w: &out, marker: []byte(mk)}
	m.Write([]byte("small write"))
	if out.String() != "small write" {
		t.Errorf("output without a marker prefix must pass at once, got %q", out.String())
	}
	m.Write([]byte("then \x1e~ps"))
	if out.String() != "small writethen " {
		t.Errorf("a possible marker start must be held back, got %q", out.String())
	}
	m.Write([]byte("cut off before the mar"))
	if m.seen() {
		t.Errorf("no marker but seen")
	}
}

func TestCapture(t *testing.T) {
	var streamed bytes.Buffer
	c := newCapture(5, &streamed, nil)
	o, e := c.stream(1), c.stream(2)
	o.Write([]byte("abc"))
	e.Write([]byte("XY"))
	o.Write([]byte("def"))
	r := c.response(3, false)
	cut := func(head string, n int, tail string) string { return head + fmt.Sprintf(OmittedMarker, n) + tail }
	if r.Output != cut("ab", 3, "def") || r.Stdout != cut("ab", 1, "def") || r.Stderr != "XY" || !r.Truncated ||
		!r.StdoutTruncated || r.StderrTruncated || r.StdoutBytes != 6 || r.StderrBytes != 2 || r.ExitCode != 3 ||
		streamed.String() != "abcdef" || c.fileData() != nil {
		t.Errorf("%+v streamed %q", r, streamed.String())
	}
	// After close (the call has returned) nothing more reaches the caller's writer.
	c.close()
	if n, err := o.Write([]byte("late")); n != 4 || err != nil || streamed.String() != "abcdef" {
		t.Errorf("a write after close: %d, %v; streamed %q", n, err, streamed.String())
	}
	c = newCapture(5, nil, nil)
	c.stream(1).Write([]byte("12345"))
	if r := c.response(0, false); r.Truncated || r.Output != "12345" {
		t.Errorf("exactly at the limit: %+v", r)
	}
	// A caller that does not stream gets the whole output kept for a file, once it is cut.
	c = newCapture(4, nil, nil)
	c.keepFile(7)
	c.stream(1).Write([]byte("ab"))
	c.stream(2).Write([]byte("cd"))
	if c.fileData() != nil {
		t.Errorf("kept %q before anything was cut", c.fileData())
	}
	c.stream(1).Write([]byte("efghij"))
	if got := string(c.fileData()); got != "abcdefg" {
		t.Errorf("kept %q, want the first 7 bytes", got)
	}
}

func TestParseGrep(t *testing.T) {
	out := "/w/a.txt\x00/w/odd:1:name\x00/w/b\x00/w/new\nline:3:x\x00\x00" +
		"/w/odd:1:name:7:x:y\n/w/a.txt:2:-v flag\n/w/a.txt:10:z\nBinary file /w/b matches\n/w/b:3:\x00bin\n" +
		"/w/new\nline:3:x:1:n\n"
	got := parseGrep([]byte(out), nil)
	want := []GrepMatch{{"/w/a.txt", 2, "-v flag"}, {"/w/a.txt", 10, "z"}, {"/w/new\nline:3:x", 1, "n"}, {"/w/odd:1:name", 7, "x:y"}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// The lines grep selected with the prefilter are checked again with Go's regexp.
	if got := parseGrep([]byte(out), regexp.MustCompile(`^.$`)); len(got) != 2 || got[0] != want[1] || got[1] != want[2] {
		t.Errorf("kept by ^.$: %+v", got)
	}
}

// TestJSONText: a line that is not valid UTF-8 reads as in HTTP mode, whose JSON makes every
// invalid byte a U+FFFD.
func TestJSONText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain é", "plain é"},
		{"caf\xe9\xe8", "caf\uFFFD\uFFFD"},
		{"\xe2\x82a", "\uFFFD\uFFFDa"},
		{"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"},
	} {
		if got := jsonText(c.in); got != c.want {
			t.Errorf("jsonText(%q) = %q, want %q", c.in, got, c.want)
		}
		b, _ := json.Marshal(c.in)
		var viaJSON string
		if err := json.Unmarshal(b, &viaJSON); err != nil || viaJSON != c.want {
			t.Errorf("%q through JSON: %q, %v", c.in, viaJSON, err)
		}
	}
}

func TestGlobFilter(t *testing.T) {
	files := []string{"/w/a.go", "/w/s/b.go", "/w/s/d/c.go", "/w/x.txt", "/other/y.go"}
	got := globFilter("s/*.go", "/w", files)
	if len(got) != 1 || got[0].Path != "/w/s/b.go" || got[0].Name != "b.go" {
		t.Errorf("%+v", got)
	}
	if got := globFilter("*.go", "/w/", files); len(got) != 3 {
		t.Errorf("any depth: %+v", got)
	}
}

// TestDebugLevelDropsWhenOff: client-go's stream errors go through debugLevel; with debug off
// nothing reaches the writer, even though logr calls Handle for errors without asking Enabled
// (a stream goroutine that outlives Execute must not write into the caller's writer).
func TestDebugLevelDropsWhenOff(t *testing.T) {
	var buf bytes.Buffer
	h := debugLevel{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})}
	logr.FromSlogHandler(h).Error(errors.New("stream reset"), "copying stderr")
	if buf.Len() != 0 {
		t.Errorf("debug is off, yet the handler wrote %q", buf.String())
	}
	h = debugLevel{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})}
	logr.FromSlogHandler(h).Error(errors.New("stream reset"), "copying stderr")
	if !strings.Contains(buf.String(), "level=DEBUG") {
		t.Errorf("debug on: %q", buf.String())
	}
}

// TestExecError: a pod that is not there is ErrSandboxGone; RBAC's refusal is not, also when it
// names a role that was "not found".
func TestExecError(t *testing.T) {
	gr := schema.GroupResource{Resource: "pods"}
	for _, tc := range []struct {
		name string
		err  error
		gone bool
	}{
		{"pod not found", apierrors.NewNotFound(gr, "p"), true},
		{"container not found", errors.New(`container not found ("sandbox")`), true},
		{"forbidden", apierrors.NewForbidden(gr, "p", errors.New("no")), false},
		{"forbidden, role not found", errors.New(`unable to upgrade connection: pods "p" is forbidden: User "u" cannot create resource "pods/exec": RBAC: role.rbac.authorization.k8s.io "podsandbox" not found`), false},
		{"other", errors.New("connection reset by peer"), false},
	} {
		if got := errors.Is(execError("p", tc.err), ErrSandboxGone); got != tc.gone {
			t.Errorf("%s: gone = %v, want %v", tc.name, got, tc.gone)
		}
	}
}
