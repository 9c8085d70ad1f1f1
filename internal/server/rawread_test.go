package server

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/podsandbox/podsandbox/internal/fileops"
	"github.com/podsandbox/podsandbox/internal/wire"
)

// TestReadRawOrNumbered checks the rule that decides what /read answers: offset 0 with limit
// wire.ReadRawLimit (pydantic-ai-backend's read_bytes) gets the content as it is, every other
// request gets numbered lines.
func TestReadRawOrNumbered(t *testing.T) {
	e := newTenv(t)
	const text = "line 1\nline 2\n"
	e.writeFile("f.txt", text)
	numbered := func(offset, limit int) string {
		s, err := fileops.FormatRead([]byte(text), offset, limit)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name          string
		body          string // the request exactly as sent
		offset, limit int    // for the numbered expectation
		raw           bool
	}{
		{"python read_bytes", `{"path": "f.txt", "offset": 0, "limit": 1000000000}`, 0, 0, true},
		{"compact JSON", `{"path":"f.txt","offset":0,"limit":1000000000}`, 0, 0, true},
		{"offset left out", `{"path": "f.txt", "limit": 1000000000}`, 0, 0, true},
		{"python read default", `{"path": "f.txt", "offset": 0, "limit": 2000}`, 0, 2000, false},
		{"limit left out", `{"path": "f.txt"}`, 0, 0, false},
		{"limit 0", `{"path": "f.txt", "offset": 0, "limit": 0}`, 0, 0, false},
		{"one below", `{"path": "f.txt", "offset": 0, "limit": 999999999}`, 0, 999999999, false},
		{"one above", `{"path": "f.txt", "offset": 0, "limit": 1000000001}`, 0, 1000000001, false},
		{"offset 1", `{"path": "f.txt", "offset": 1, "limit": 1000000000}`, 1, 1000000000, false},
		{"negative offset", `{"path": "f.txt", "offset": -1, "limit": 1000000000}`, -1, 1000000000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rr wire.ReadResponse
			e.ok(wire.RouteRead, tt.body, &rr)
			want := text
			if !tt.raw {
				want = numbered(tt.offset, tt.limit)
			}
			if rr.Content != want {
				t.Fatalf("got %q, want %q", rr.Content, want)
			}
		})
	}
}

// TestReadRawContent checks that the raw form carries every valid UTF-8 file exactly, and refuses
// the rest (and the usual failures) with a status >= 400, which the Python client's read_bytes
// turns into b"" rather than into content.
func TestReadRawContent(t *testing.T) {
	e := newTenv(t, func(c *Config) { c.MaxFileBytes = 1 << 10 })
	raw := func(p string) wire.ReadRequest {
		return wire.ReadRequest{Path: p, Offset: 0, Limit: wire.ReadRawLimit}
	}
	tests := []struct {
		name, content string
	}{
		{"final newline", "a\nb\n"},
		{"no final newline", "a\nb"},
		{"empty", ""},
		{"only newlines", "\n\n\n"},
		{"CRLF and a lone CR", "a\r\nb\rc\r\n"},
		{"looks numbered", "     1\tnot a line number\n"},
		{"unicode", "héllo wörld ✓ 日本語 🚀\u2028\u2029\n"},
		{"BOM", "\ufeffbom\n"},
		{"NUL and control bytes", "\x00\x01\x02\x1b[0m\x7f\tend\x00"},
		{"HTML characters", "<a href=\"x&y\">'</a>\n"},
		{"trailing spaces and tabs", "x  \t\n\t\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rel := "c/" + strings.ReplaceAll(tt.name, " ", "_")
			e.writeFile(rel, tt.content)
			var rr wire.ReadResponse
			e.ok(wire.RouteRead, raw(rel), &rr)
			if rr.Content != tt.content {
				t.Fatalf("got %q, want %q", rr.Content, tt.content)
			}
		})
	}

	refused := []struct {
		name, rel, content string
		status             int
		code               string
	}{
		{"invalid UTF-8", "bin", "\x89PNG\r\n\x1a\n\x00\xff", http.StatusBadRequest, wire.CodeInvalid},
		{"cut multibyte rune", "cut", "caf\xc3", http.StatusBadRequest, wire.CodeInvalid},
		{"missing", "missing", "", http.StatusNotFound, wire.CodeNotFound},
		{"directory", "c", "", http.StatusBadRequest, wire.CodeIsDirectory},
		{"too large", "big", strings.Repeat("x", 1<<10+1), http.StatusRequestEntityTooLarge, wire.CodeTooLarge},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			if tt.content != "" {
				e.writeFile(tt.rel, tt.content)
			}
			e.fail(wire.RouteRead, raw(tt.rel), tt.status, tt.code)
		})
	}

	// The numbered view of a non-UTF-8 file is unchanged: U+FFFD for the bad bytes.
	var rr wire.ReadResponse
	e.ok(wire.RouteRead, wire.ReadRequest{Path: "bin", Limit: 2000}, &rr)
	if want, _ := fileops.FormatRead([]byte("\x89PNG\r\n\x1a\n\x00\xff"), 0, 2000); rr.Content != want {
		t.Fatalf("numbered view of a binary file: %q, want %q", rr.Content, want)
	}
}

// TestPythonEditRoundTrip does what pydantic-ai-backend's edit does over HTTP (read_bytes through
// /read, replace, write back through /write) and checks the file on disk byte for byte.
func TestPythonEditRoundTrip(t *testing.T) {
	e := newTenv(t)
	tests := []struct {
		name, path, content, old, new string
		replaceAll                    bool
		want                          string
	}{
		{"single", "a.txt", "hello world\nbye\n", "world", "there", false, "hello there\nbye\n"},
		{"no final newline", "b.txt", "x = 1\ny = 2", "y = 2", "y = 3", false, "x = 1\ny = 3"},
		{"replace_all", "c.txt", "a-a-a\na\n", "a", "bb", true, "bb-bb-bb\nbb\n"},
		{"unicode", "d.txt", "naïve café\n日本\n", "café", "thé ✓", false, "naïve thé ✓\n日本\n"},
		{"path with spaces", "my dir/some file.txt", "one two\n", "two", "three", false, "one three\n"},
		{"CRLF", "e.txt", "a\r\nb\r\n", "b", "c", false, "a\r\nc\r\n"},
		{"NUL bytes", "f.bin", "\x00head\x00\x01tail", "head", "HEAD", false, "\x00HEAD\x00\x01tail"},
		{"empty lines kept", "g.txt", "\n\nx\n\n", "x", "y", false, "\n\ny\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			write := func(content string) {
				e.ok(wire.RouteWrite, wire.WriteRequest{Path: tt.path, ContentB64: base64.StdEncoding.EncodeToString([]byte(content))}, nil)
			}
			readBytes := func() string {
				var rr wire.ReadResponse
				e.ok(wire.RouteRead, `{"path": "`+tt.path+`", "offset": 0, "limit": 1000000000}`, &rr)
				return rr.Content
			}
			write(tt.content)
			if got := readBytes(); got != tt.content {
				t.Fatalf("read_bytes after write: %q, want %q", got, tt.content)
			}
			content := readBytes()
			n := strings.Count(content, tt.old)
			if n == 0 || (n > 1 && !tt.replaceAll) {
				t.Fatalf("%q occurs %d times in %q", tt.old, n, content)
			}
			if tt.replaceAll {
				content = strings.ReplaceAll(content, tt.old, tt.new)
			} else {
				content = strings.Replace(content, tt.old, tt.new, 1)
			}
			write(content)
			disk, err := os.ReadFile(e.path(tt.path))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(disk, []byte(tt.want)) {
				t.Fatalf("on disk %q, want %q", disk, tt.want)
			}
			if got := readBytes(); got != tt.want {
				t.Fatalf("read_bytes after edit: %q, want %q", got, tt.want)
			}
		})
	}
}
