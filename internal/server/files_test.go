package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/podsandbox/podsandbox/internal/fileops"
	"github.com/podsandbox/podsandbox/internal/wire"
)

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// oddNames are file names that must survive every route.
var oddNames = []string{
	"plain.txt",
	"with space.txt",
	"it's 'quoted'.txt",
	`double "quoted".txt`,
	"new\nline.txt",
	"ünïcødé 日本.txt",
	"-starts-with-dash.txt",
	"$(touch injected).txt",
	"back`tick`.txt",
	"semi;colon&amp|pipe.txt",
	"tab\there.txt",
	"*glob?[chars].txt",
}

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func putFile(e *tenv, p string, data []byte) (int, []byte) {
	e.t.Helper()
	return e.request(http.MethodPut, wire.RouteFiles+"?path="+url.QueryEscape(p), data)
}

func readBytes(e *tenv, p string) []byte {
	e.t.Helper()
	code, data := e.request(http.MethodPost, wire.RouteReadBytes, wire.PathRequest{Path: p})
	if code != http.StatusOK {
		e.t.Fatalf("read_bytes %q: %d %s", p, code, data)
	}
	return data
}

func TestOddPathsEveryRoute(t *testing.T) {
	e := newTenv(t)
	for _, name := range oddNames {
		t.Run(name, func(t *testing.T) {
			e.t = t
			rel := "dir 'x'/" + name
			abs := e.path(rel)
			content := "hello\n" + name + "\n"

			// PUT /files, relative path, parent created.
			code, body := putFile(e, rel, []byte(content))
			if code != 200 {
				t.Fatalf("PUT: %d %s", code, body)
			}
			var wr wire.WriteResponse
			if err := json.Unmarshal(body, &wr); err != nil || wr.BytesWritten != len(content) || wr.Path != rel {
				t.Fatalf("PUT response %s", body)
			}
			if got, _ := os.ReadFile(abs); string(got) != content {
				t.Fatalf("on disk: %q", got)
			}
			// /read_bytes, absolute path.
			if got := readBytes(e, abs); string(got) != content {
				t.Fatalf("read_bytes %q", got)
			}
			// /read.
			var rr wire.ReadResponse
			e.ok(wire.RouteRead, wire.ReadRequest{Path: rel}, &rr)
			want, _ := fileops.FormatRead([]byte(content), 0, 0)
			if rr.Content != want {
				t.Fatalf("read %q want %q", rr.Content, want)
			}
			// /write.
			e.ok(wire.RouteWrite, wire.WriteRequest{Path: rel, ContentB64: base64.StdEncoding.EncodeToString([]byte("v2 " + name))}, nil)
			// /edit.
			var er wire.EditResponse
			e.ok(wire.RouteEdit, wire.EditRequest{Path: rel, Old: "v2", New: "v3"}, &er)
			if got, _ := os.ReadFile(abs); string(got) != "v3 "+name || er.Occurrences != 1 {
				t.Fatalf("after edit: %q %+v", got, er)
			}
			// /exists.
			var ex wire.ExistsResponse
			e.ok(wire.RouteExists, wire.PathRequest{Path: rel}, &ex)
			if !ex.Exists {
				t.Fatal("exists false")
			}
			// /ls of the parent.
			var rows []wire.FileInfo
			e.ok(wire.RouteLs, wire.PathRequest{Path: "dir 'x'"}, &rows)
			found := false
			for _, r := range rows {
				found = found || (r.Name == name && r.Path == abs)
			}
			if !found {
				t.Fatalf("ls lacks %q: %+v", name, rows)
			}
			// /glob by its exact (escaped where needed) name is hard for glob chars; match by suffix.
			var g []wire.FileInfo
			e.ok(wire.RouteGlob, wire.GlobRequest{Pattern: "**/*.txt", Path: "."}, &g)
			found = false
			for _, r := range g {
				found = found || r.Path == abs
			}
			if !found {
				t.Fatalf("glob lacks %q", abs)
			}
			// /grep.
			var m []wire.GrepMatch
			e.ok(wire.RouteGrep, wire.GrepRequest{Pattern: "^v3 ", Path: "dir 'x'"}, &m)
			found = false
			for _, r := range m {
				found = found || (r.Path == abs && r.LineNumber == 1)
			}
			if !found {
				t.Fatalf("grep lacks %q: %+v", abs, m)
			}
			// exec in the dir.
			r := e.exec(wire.ExecRequest{Command: "cat ./*", Dir: "dir 'x'"})
			if !strings.Contains(r.Output, "v3 "+name) {
				t.Fatalf("exec: %+v", r)
			}
		})
	}
	if exists(e.path("injected")) {
		t.Fatal("a file name was executed")
	}
}

func TestBinaryRoundTrip(t *testing.T) {
	e := newTenv(t)
	data := bytes.Repeat(allBytes(), 300)
	if code, body := putFile(e, "bin/all.bin", data); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	if got := readBytes(e, "bin/all.bin"); !bytes.Equal(got, data) {
		t.Fatalf("read_bytes differs (%d bytes, want %d)", len(got), len(data))
	}
	e.ok(wire.RouteWrite, wire.WriteRequest{Path: "bin/b64.bin", ContentB64: base64.StdEncoding.EncodeToString(data)}, nil)
	if got := readBytes(e, "bin/b64.bin"); !bytes.Equal(got, data) {
		t.Fatal("/write then /read_bytes differs")
	}
	// Unpadded base64 is accepted too.
	e.ok(wire.RouteWrite, wire.WriteRequest{Path: "bin/raw.bin", ContentB64: base64.RawStdEncoding.EncodeToString(allBytes()[:10])}, nil)
	if got := readBytes(e, "bin/raw.bin"); !bytes.Equal(got, allBytes()[:10]) {
		t.Fatal("raw base64")
	}
	e.fail(wire.RouteWrite, wire.WriteRequest{Path: "x", ContentB64: "!!not base64!!"}, http.StatusBadRequest, wire.CodeInvalid)
	// Empty files.
	if code, _ := putFile(e, "empty", nil); code != 200 {
		t.Fatal(code)
	}
	if got := readBytes(e, "empty"); len(got) != 0 {
		t.Fatalf("%q", got)
	}
	var rr wire.ReadResponse
	e.ok(wire.RouteRead, wire.ReadRequest{Path: "empty"}, &rr)
	if rr.Content != "" {
		t.Fatalf("%q", rr.Content)
	}
}

func TestReadBytesHeaders(t *testing.T) {
	e := newTenv(t)
	e.writeFile("f", "12345")
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+wire.RouteReadBytes, strings.NewReader(`{"path":"f"}`))
	req.Header.Set(wire.TokenHeader, testToken)
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ContentLength != 5 || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("length %d type %q", resp.ContentLength, resp.Header.Get("Content-Type"))
	}
	// A /proc file has stat size 0 but content.
	if got := readBytes(e, "/proc/self/status"); !bytes.Contains(got, []byte("Name:")) {
		t.Fatalf("%q", got)
	}
}

func TestReadErrors(t *testing.T) {
	e := newTenv(t)
	e.writeFile("three", "a\nb\nc\n")
	if err := os.Mkdir(e.path("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(e.path("fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, route := range []string{wire.RouteRead, wire.RouteReadBytes} {
		e.fail(route, wire.ReadRequest{Path: "missing"}, http.StatusNotFound, wire.CodeNotFound)
		e.fail(route, wire.ReadRequest{Path: "three/below"}, http.StatusNotFound, wire.CodeNotFound)
		e.fail(route, wire.ReadRequest{Path: "d"}, http.StatusBadRequest, wire.CodeIsDirectory)
		e.fail(route, wire.ReadRequest{Path: ""}, http.StatusBadRequest, wire.CodeIsDirectory)
		e.fail(route, wire.ReadRequest{Path: "fifo"}, http.StatusBadRequest, wire.CodeInvalid)
		e.fail(route, wire.ReadRequest{Path: "nul\x00byte"}, http.StatusBadRequest, wire.CodeInvalid)
	}
	we := e.fail(wire.RouteRead, wire.ReadRequest{Path: "three", Offset: 3}, http.StatusBadRequest, wire.CodeOffset)
	if we.Lines != 3 || we.Error != "Offset 3 exceeds file length (3 lines)" {
		t.Fatalf("%+v", we)
	}
	tests := []struct {
		offset, limit int
	}{{0, 0}, {1, 1}, {2, 5}, {-1, 2}, {0, 2}}
	for _, tt := range tests {
		var rr wire.ReadResponse
		e.ok(wire.RouteRead, wire.ReadRequest{Path: "three", Offset: tt.offset, Limit: tt.limit}, &rr)
		want, _ := fileops.FormatRead([]byte("a\nb\nc\n"), tt.offset, tt.limit)
		if rr.Content != want {
			t.Fatalf("offset %d limit %d: %q want %q", tt.offset, tt.limit, rr.Content, want)
		}
	}
}

func TestTooLarge(t *testing.T) {
	const limit = 1000
	e := newTenv(t, func(c *Config) { c.MaxFileBytes = limit })
	e.writeFile("big", strings.Repeat("x", limit+1))
	e.writeFile("fits", strings.Repeat("x", limit))
	for _, route := range []string{wire.RouteRead, wire.RouteReadBytes} {
		we := e.fail(route, wire.ReadRequest{Path: "big"}, http.StatusRequestEntityTooLarge, wire.CodeTooLarge)
		if we.Size != limit+1 || we.Limit != limit {
			t.Fatalf("%s: %+v", route, we)
		}
		e.ok(route, wire.ReadRequest{Path: "fits"}, nil)
	}
	we := e.fail(wire.RouteEdit, wire.EditRequest{Path: "big", Old: "x", New: "y", ReplaceAll: true}, http.StatusRequestEntityTooLarge, wire.CodeTooLarge)
	if we.Size != limit+1 || we.Limit != limit {
		t.Fatalf("%+v", we)
	}
	// An edit that would grow the file over the limit.
	e.fail(wire.RouteEdit, wire.EditRequest{Path: "fits", Old: "x", New: "yy", ReplaceAll: true}, http.StatusRequestEntityTooLarge, wire.CodeTooLarge)
	if got, _ := os.ReadFile(e.path("fits")); string(got) != strings.Repeat("x", limit) {
		t.Fatal("refused edit changed the file")
	}
	// Writes.
	e.fail(wire.RouteWrite, wire.WriteRequest{Path: "w", ContentB64: base64.StdEncoding.EncodeToString(make([]byte, limit+1))}, http.StatusRequestEntityTooLarge, wire.CodeTooLarge)
	e.ok(wire.RouteWrite, wire.WriteRequest{Path: "w", ContentB64: base64.StdEncoding.EncodeToString(make([]byte, limit))}, nil)
	code, body := putFile(e, "p", make([]byte, limit+1))
	var we2 wire.Error
	if err := json.Unmarshal(body, &we2); err != nil || code != 413 || we2.Code != wire.CodeTooLarge || we2.Limit != limit || we2.Size != limit+1 {
		t.Fatalf("PUT too large: %d %s", code, body)
	}
	// A chunked body (no Content-Length) is cut by MaxBytesReader; nothing is left behind.
	code, body = e.request(http.MethodPut, wire.RouteFiles+"?path=chunked", struct{ *strings.Reader }{strings.NewReader(strings.Repeat("z", limit+500))})
	if err := json.Unmarshal(body, &we2); err != nil || code != 413 || we2.Code != wire.CodeTooLarge {
		t.Fatalf("chunked PUT too large: %d %s", code, body)
	}
	if exists(e.path("p")) || exists(e.path("chunked")) {
		t.Fatal("refused write created a file")
	}
	entries, _ := os.ReadDir(e.dir)
	for _, de := range entries {
		if strings.Contains(de.Name(), ".tmp") {
			t.Fatalf("temp file left behind: %s", de.Name())
		}
	}
	code, _ = putFile(e, "p", make([]byte, limit))
	if code != 200 {
		t.Fatal(code)
	}
}

func TestWriteSemantics(t *testing.T) {
	e := newTenv(t)
	// Parents are created 0755, new files are 0644.
	if code, body := putFile(e, "a/b/c/new.txt", []byte("x")); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	st, _ := os.Stat(e.path("a/b/c/new.txt"))
	dst, _ := os.Stat(e.path("a/b/c"))
	if st.Mode().Perm() != 0o644 || dst.Mode().Perm() != 0o755 {
		t.Fatalf("modes %v %v", st.Mode(), dst.Mode())
	}
	// Replacing keeps the existing mode.
	p := e.writeFile("script.sh", "#!/bin/sh\necho one\n")
	if err := os.Chmod(p, 0o750); err != nil {
		t.Fatal(err)
	}
	e.ok(wire.RouteWrite, wire.WriteRequest{Path: "script.sh", ContentB64: base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\necho two\n"))}, nil)
	st, _ = os.Stat(p)
	if st.Mode().Perm() != 0o750 {
		t.Fatalf("mode after write %v", st.Mode())
	}
	// The write is atomic: a reader holding the old file keeps the old content.
	old, _ := os.Open(p)
	defer old.Close()
	e.ok(wire.RouteWrite, wire.WriteRequest{Path: "script.sh", ContentB64: base64.StdEncoding.EncodeToString([]byte("three"))}, nil)
	buf := make([]byte, 100)
	n, _ := old.Read(buf)
	if string(buf[:n]) != "#!/bin/sh\necho two\n" {
		t.Fatalf("old handle sees %q: the file was rewritten in place", buf[:n])
	}
	// Through a symlink: the target is replaced, the link stays.
	e.writeFile("target.txt", "t")
	if err := os.Symlink("target.txt", e.path("link.txt")); err != nil {
		t.Fatal(err)
	}
	e.ok(wire.RouteWrite, wire.WriteRequest{Path: "link.txt", ContentB64: base64.StdEncoding.EncodeToString([]byte("via link"))}, nil)
	if got, _ := os.ReadFile(e.path("target.txt")); string(got) != "via link" {
		t.Fatalf("%q", got)
	}
	if li, _ := os.Lstat(e.path("link.txt")); li.Mode()&os.ModeSymlink == 0 {
		t.Fatal("symlink replaced")
	}
	// Errors.
	if err := os.Mkdir(e.path("adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.fail(wire.RouteWrite, wire.WriteRequest{Path: "adir", ContentB64: ""}, http.StatusBadRequest, wire.CodeIsDirectory)
	e.fail(wire.RouteWrite, wire.WriteRequest{Path: "", ContentB64: ""}, http.StatusBadRequest, wire.CodeInvalid)
	e.fail(wire.RouteWrite, wire.WriteRequest{Path: "target.txt/below", ContentB64: ""}, http.StatusBadRequest, wire.CodeNotDirectory)
	e.failMethod(http.MethodPut, wire.RouteFiles, "x", http.StatusBadRequest, wire.CodeInvalid)
	e.failMethod(http.MethodPut, wire.RouteFiles+"?path=adir", "x", http.StatusBadRequest, wire.CodeIsDirectory)
}

func TestEdit(t *testing.T) {
	e := newTenv(t)
	p := e.writeFile("e.txt", "foo bar foo\nbaz\n")
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	e.fail(wire.RouteEdit, wire.EditRequest{Path: "e.txt", Old: "", New: "x"}, http.StatusBadRequest, wire.CodeInvalid)
	we := e.fail(wire.RouteEdit, wire.EditRequest{Path: "e.txt", Old: "nope", New: "x"}, http.StatusBadRequest, wire.CodeStringNotFound)
	if we.Count != 0 {
		t.Fatalf("%+v", we)
	}
	we = e.fail(wire.RouteEdit, wire.EditRequest{Path: "e.txt", Old: "foo", New: "x"}, http.StatusBadRequest, wire.CodeAmbiguous)
	if we.Count != 2 {
		t.Fatalf("%+v", we)
	}
	e.fail(wire.RouteEdit, wire.EditRequest{Path: "missing", Old: "a", New: "b"}, http.StatusNotFound, wire.CodeNotFound)
	e.fail(wire.RouteEdit, wire.EditRequest{Path: ".", Old: "a", New: "b"}, http.StatusBadRequest, wire.CodeIsDirectory)
	var er wire.EditResponse
	e.ok(wire.RouteEdit, wire.EditRequest{Path: "e.txt", Old: "foo", New: "qu'x\"$(y)", ReplaceAll: true}, &er)
	if er.Occurrences != 2 || er.Path != "e.txt" {
		t.Fatalf("%+v", er)
	}
	e.ok(wire.RouteEdit, wire.EditRequest{Path: p, Old: "baz\n", New: ""}, &er)
	got, _ := os.ReadFile(p)
	if string(got) != "qu'x\"$(y) bar qu'x\"$(y)\n" || er.Occurrences != 1 {
		t.Fatalf("%q %+v", got, er)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("edit changed the mode to %v", st.Mode())
	}
}

func TestExists(t *testing.T) {
	e := newTenv(t)
	e.writeFile("f", "x")
	_ = os.Mkdir(e.path("d"), 0o755)
	_ = os.Symlink("f", e.path("link-to-file"))
	_ = os.Symlink("d", e.path("link-to-dir"))
	_ = os.Symlink("nowhere", e.path("dangling"))
	tests := map[string]bool{
		"f": true, e.path("f"): true, "link-to-file": true,
		"d": false, "link-to-dir": false, "dangling": false, "missing": false, "": false, "f/x": false,
	}
	for p, want := range tests {
		var r wire.ExistsResponse
		e.ok(wire.RouteExists, wire.PathRequest{Path: p}, &r)
		if r.Exists != want {
			t.Errorf("exists(%q) = %v, want %v", p, r.Exists, want)
		}
	}
}

func TestLs(t *testing.T) {
	e := newTenv(t)
	e.writeFile("b.txt", "12345")
	e.writeFile(".hidden", "")
	e.writeFile("a dir/inner", "")
	e.writeFile("z/inner", "")
	_ = os.Symlink("z", e.path("link-to-dir"))
	_ = os.Symlink("b.txt", e.path("link-to-file"))
	_ = os.Symlink("nowhere", e.path("dangling"))
	mt := time.Date(2020, 1, 2, 3, 4, 5, 600_000_000, time.FixedZone("x", 3600))
	_ = os.Chtimes(e.path("b.txt"), mt, mt)

	var rows []wire.FileInfo
	e.ok(wire.RouteLs, wire.PathRequest{Path: ""}, &rows)
	var names []string
	for _, r := range rows {
		names = append(names, r.Name)
		if r.Path != filepath.Join(e.dir, r.Name) {
			t.Errorf("path %q", r.Path)
		}
		if r.ModifiedAt == nil || r.ModifiedAt.Nanosecond() != 0 || r.ModifiedAt.Location() != time.UTC {
			t.Errorf("%s modified_at %v", r.Name, r.ModifiedAt)
		}
	}
	want := "a dir,link-to-dir,z,.hidden,b.txt,dangling,link-to-file"
	if strings.Join(names, ",") != want {
		t.Fatalf("order %v, want %s", names, want)
	}
	for _, r := range rows {
		switch r.Name {
		case "b.txt":
			if r.Size != 5 || !r.ModifiedAt.Equal(mt.Truncate(time.Second)) || r.IsDir {
				t.Errorf("%+v (mtime %v)", r, r.ModifiedAt)
			}
		case "link-to-dir":
			if !r.IsDir || r.Size != 1 { // Lstat size: the link's own length
				t.Errorf("%+v", r)
			}
		case "link-to-file":
			if r.IsDir || r.Size != int64(len("b.txt")) {
				t.Errorf("%+v", r)
			}
		}
	}
	// The same dir by absolute path, through a symlink, and "." all work.
	e.ok(wire.RouteLs, wire.PathRequest{Path: "link-to-dir"}, &rows)
	if len(rows) != 1 || rows[0].Path != e.path("link-to-dir/inner") {
		t.Fatalf("%+v", rows)
	}
	e.ok(wire.RouteLs, wire.PathRequest{Path: "."}, &rows)
	if len(rows) != 7 {
		t.Fatalf("%d rows", len(rows))
	}
	// Empty dir: [] not null.
	_ = os.Mkdir(e.path("empty"), 0o755)
	code, body := e.request(http.MethodPost, wire.RouteLs, wire.PathRequest{Path: "empty"})
	if code != 200 || strings.TrimSpace(string(body)) != "[]" {
		t.Fatalf("%d %s", code, body)
	}
	e.fail(wire.RouteLs, wire.PathRequest{Path: "missing"}, http.StatusNotFound, wire.CodeNotFound)
	e.fail(wire.RouteLs, wire.PathRequest{Path: "b.txt"}, http.StatusBadRequest, wire.CodeNotDirectory)
}

func TestWriteFallsBackToInPlace(t *testing.T) {
	// A writable file in a directory the server cannot write: no temp file is possible, so the
	// file is rewritten in place (as upstream's shell redirect would). A read-only file is refused.
	ws := unprivilegedWorkDir(t)
	ro := filepath.Join(ws, "ro")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{"open.txt": 0o666, "closed.txt": 0o644} {
		p := filepath.Join(ro, name)
		if err := os.WriteFile(p, []byte("old"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	if os.Getuid() != 0 {
		// Non-root owners could still write closed.txt: take the write bit away from everyone.
		_ = os.Chmod(filepath.Join(ro, "closed.txt"), 0o444)
	}
	before, _ := os.Stat(filepath.Join(ro, "open.txt"))
	res := runUnprivileged(t, ws,
		helperRequest{wire.RouteWrite, `{"path":"ro/open.txt","content_b64":"bmV3IGNvbnRlbnQ="}`},
		helperRequest{wire.RouteEdit, `{"path":"ro/open.txt","old_string":"new","new_string":"edited"}`},
		helperRequest{wire.RouteWrite, `{"path":"ro/closed.txt","content_b64":"bmV3"}`},
		helperRequest{wire.RouteWrite, `{"path":"ro/created.txt","content_b64":"bmV3"}`},
	)
	if res[0].Status != 200 || res[1].Status != 200 {
		t.Fatalf("in-place write: %d %s / %d %s", res[0].Status, res[0].Body, res[1].Status, res[1].Body)
	}
	after, _ := os.Stat(filepath.Join(ro, "open.txt"))
	if got, _ := os.ReadFile(filepath.Join(ro, "open.txt")); string(got) != "edited content" || !os.SameFile(before, after) {
		t.Fatalf("content %q, same inode %v", got, os.SameFile(before, after))
	}
	for _, r := range res[2:] {
		var we wire.Error
		if r.Status != http.StatusForbidden || json.Unmarshal(r.Body, &we) != nil || we.Code != wire.CodeInternal {
			t.Fatalf("write without permission: %d %s", r.Status, r.Body)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(ro, "closed.txt")); string(got) != "old" || exists(filepath.Join(ro, "created.txt")) {
		t.Fatal("refused writes changed files")
	}
}
