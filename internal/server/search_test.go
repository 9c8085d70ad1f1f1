package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/podsandbox/podsandbox/internal/wire"
)

func globPaths(t *testing.T, e *tenv, pattern, root string) []string {
	t.Helper()
	var rows []wire.FileInfo
	e.ok(wire.RouteGlob, wire.GlobRequest{Pattern: pattern, Path: root}, &rows)
	out := []string{}
	for _, r := range rows {
		if r.IsDir || r.Size != 0 || r.ModifiedAt != nil || r.Name != filepath.Base(r.Path) {
			t.Errorf("glob row %+v", r)
		}
		rel, err := filepath.Rel(e.dir, r.Path)
		if err != nil || !filepath.IsAbs(r.Path) {
			t.Errorf("glob path %q", r.Path)
		}
		out = append(out, rel)
	}
	if !sort.StringsAreSorted(out) {
		t.Errorf("glob rows not sorted: %v", out)
	}
	return out
}

func TestGlob(t *testing.T) {
	e := newTenv(t)
	for _, f := range []string{"a.py", "b.go", "src/c.py", "src/deep/d.py", "src/deep/e.txt", ".hid/h.py", "x/src/f.go", "sp ace/g.py"} {
		e.writeFile(f, "")
	}
	_ = os.Symlink("a.py", e.path("link.py")) // not a regular file: excluded, as find -type f
	_ = os.Mkdir(e.path("dir.py"), 0o755)
	tests := []struct {
		pattern, root string
		want          string
	}{
		{"*.py", "", ".hid/h.py a.py sp ace/g.py src/c.py src/deep/d.py"},
		{"**/*.py", ".", ".hid/h.py a.py sp ace/g.py src/c.py src/deep/d.py"},
		{"./*.go", "/", "b.go x/src/f.go"},
		{"src/*.go", "", "x/src/f.go"},
		{"src/**", "", "src/c.py src/deep/d.py src/deep/e.txt x/src/f.go"},
		{"src/**/*.py", "", "src/c.py src/deep/d.py"},
		{"deep/*", "src", "src/deep/d.py src/deep/e.txt"},
		{"*.py", "src", "src/c.py src/deep/d.py"},
		{"*.py", e.path("src/deep"), "src/deep/d.py"},
		{"{a,b}.*", "", "a.py b.go"},
		{"[ab].py", "", "a.py"},
		{"nomatch", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"@"+tt.root, func(t *testing.T) {
			e.t = t
			if got := strings.Join(globPaths(t, e, tt.pattern, tt.root), " "); got != tt.want {
				t.Fatalf("got %q\nwant %q", got, tt.want)
			}
		})
	}
	e.t = t
	e.fail(wire.RouteGlob, wire.GlobRequest{Pattern: "[", Path: ""}, http.StatusBadRequest, wire.CodeInvalid)
	// An empty result is [] (upstream's client iterates it); a missing or non-directory root just
	// has no matches, as with the pods/exec transport.
	for _, req := range []wire.GlobRequest{{Pattern: "*.none"}, {Pattern: "*", Path: "missing"}, {Pattern: "*", Path: "a.py"}} {
		code, body := e.request(http.MethodPost, wire.RouteGlob, req)
		if code != 200 || strings.TrimSpace(string(body)) != "[]" {
			t.Fatalf("%+v: %d %s", req, code, body)
		}
	}
	// A symlinked root is followed; results are reported under it.
	_ = os.Symlink("src", e.path("srclink"))
	var rows []wire.FileInfo
	e.ok(wire.RouteGlob, wire.GlobRequest{Pattern: "*.py", Path: "srclink"}, &rows)
	if len(rows) != 2 || rows[0].Path != e.path("srclink/c.py") {
		t.Fatalf("%+v", rows)
	}
}

func grepResults(t *testing.T, e *tenv, req wire.GrepRequest) []string {
	t.Helper()
	var ms []wire.GrepMatch
	e.ok(wire.RouteGrep, req, &ms)
	out := []string{}
	for _, m := range ms {
		rel, _ := filepath.Rel(e.dir, m.Path)
		out = append(out, fmt.Sprintf("%s:%d:%s", rel, m.LineNumber, m.Line))
	}
	return out
}

func TestGrep(t *testing.T) {
	e := newTenv(t)
	e.writeFile("a.go", "package a\nfunc Foo() {}\n// foo\n")
	e.writeFile("b.py", "def foo():\n    return 'x'\r\nfoo")
	e.writeFile("sub/c.go", "Foo here\n")
	e.writeFile(".hidden.go", "Foo hidden\n")
	e.writeFile(".git/config.go", "Foo in git\n")
	e.writeFile("bin.dat", "Foo\x00binary\n")
	e.writeFile("late-nul.txt", strings.Repeat("a", 9000)+"\x00\nFoo late\n")
	e.writeFile("long.txt", strings.Repeat("x", 200_000)+"Foo\nshort Foo\n")
	e.writeFile("inject.txt", "-e\n--help\n'quoted'\n$(touch pwned)\n`id`\nline\\nwith escape\n")
	_ = os.Symlink("a.go", e.path("link.go"))

	tests := []struct {
		name string
		req  wire.GrepRequest
		want []string
	}{
		{"basic", wire.GrepRequest{Pattern: "Foo"}, []string{"a.go:2:func Foo() {}", "late-nul.txt:2:Foo late", "long.txt:1:" + strings.Repeat("x", 200_000) + "Foo", "long.txt:2:short Foo", "sub/c.go:1:Foo here"}},
		{"regexp", wire.GrepRequest{Pattern: "^(func|def) [Ff]oo"}, []string{"a.go:2:func Foo() {}", "b.py:1:def foo():"}},
		{"include glob", wire.GrepRequest{Pattern: "Foo", Glob: "*.go"}, []string{"a.go:2:func Foo() {}", "sub/c.go:1:Foo here"}},
		{"include hidden", wire.GrepRequest{Pattern: "Foo", Glob: "*.go", IncludeHidden: true}, []string{".git/config.go:1:Foo in git", ".hidden.go:1:Foo hidden", "a.go:2:func Foo() {}", "sub/c.go:1:Foo here"}},
		{"subdir", wire.GrepRequest{Pattern: "Foo", Path: "sub"}, []string{"sub/c.go:1:Foo here"}},
		{"one file", wire.GrepRequest{Pattern: "foo", Path: "b.py"}, []string{"b.py:1:def foo():", "b.py:3:foo"}},
		{"hidden root file", wire.GrepRequest{Pattern: "Foo", Path: ".hidden.go"}, []string{".hidden.go:1:Foo hidden"}},
		{"hidden root dir", wire.GrepRequest{Pattern: "Foo", Path: ".git"}, []string{".git/config.go:1:Foo in git"}},
		{"file root ignores include", wire.GrepRequest{Pattern: "foo", Path: "b.py", Glob: "*.go"}, []string{"b.py:1:def foo():", "b.py:3:foo"}},
		{"include glob on the base name", wire.GrepRequest{Pattern: "Foo", Glob: "c.go"}, []string{"sub/c.go:1:Foo here"}},
		{"keeps CR", wire.GrepRequest{Pattern: "return", Path: "b.py"}, []string{"b.py:2:    return 'x'\r"}},
		{"dash pattern", wire.GrepRequest{Pattern: "-e"}, []string{"inject.txt:1:-e"}},
		{"double dash", wire.GrepRequest{Pattern: "--help"}, []string{"inject.txt:2:--help"}},
		{"quotes", wire.GrepRequest{Pattern: "'quoted'"}, []string{"inject.txt:3:'quoted'"}},
		{"subst", wire.GrepRequest{Pattern: `\$\(touch pwned\)`}, []string{"inject.txt:4:$(touch pwned)"}},
		{"subst unescaped", wire.GrepRequest{Pattern: `$(touch pwned)`}, []string{}},
		{"backticks", wire.GrepRequest{Pattern: "`id`"}, []string{"inject.txt:5:`id`"}},
		{"newline in pattern", wire.GrepRequest{Pattern: "line\nwith"}, []string{}},
		{"literal backslash n", wire.GrepRequest{Pattern: `line\\nwith`}, []string{`inject.txt:6:line\nwith escape`}},
		{"no match", wire.GrepRequest{Pattern: "zzz"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			got := grepResults(t, e, tt.req)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("got\n%s\nwant\n%s", trim(got), trim(tt.want))
			}
		})
	}
	e.t = t
	if exists(e.path("pwned")) {
		t.Fatal("a pattern was executed")
	}
	e.fail(wire.RouteGrep, wire.GrepRequest{Pattern: "("}, http.StatusBadRequest, wire.CodeInvalid)
	e.fail(wire.RouteGrep, wire.GrepRequest{Pattern: "x", Path: "missing"}, http.StatusNotFound, wire.CodeNotFound)
	code, body := e.request(http.MethodPost, wire.RouteGrep, wire.GrepRequest{Pattern: "zzz"})
	if code != 200 || strings.TrimSpace(string(body)) != "[]" {
		t.Fatalf("%d %s", code, body)
	}
}

func trim(lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		if len(l) > 100 {
			l = l[:100] + "..."
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

func TestSearchSkipsUnreadableDirectories(t *testing.T) {
	ws := unprivilegedWorkDir(t)
	for _, f := range []string{"a.txt", "sub/b.txt", "locked/c.txt", "z/d.txt"} {
		p := filepath.Join(ws, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("needle\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(ws, "locked"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(ws, "locked"), 0o755) })

	res := runUnprivileged(t, ws,
		helperRequest{wire.RouteExec, `{"command":"ls locked"}`},
		helperRequest{wire.RouteGlob, `{"pattern":"**/*.txt","path":"."}`},
		helperRequest{wire.RouteGrep, `{"pattern":"needle"}`},
	)
	// The helper itself cannot list the directory, so the test cannot pass vacuously.
	var ex wire.ExecResponse
	if err := json.Unmarshal(res[0].Body, &ex); err != nil || ex.ExitCode == 0 {
		t.Fatalf("the locked dir is readable for the helper: %s", res[0].Body)
	}
	var glob []wire.FileInfo
	var grep []wire.GrepMatch
	if res[1].Status != 200 || res[2].Status != 200 || json.Unmarshal(res[1].Body, &glob) != nil || json.Unmarshal(res[2].Body, &grep) != nil {
		t.Fatalf("glob %d %s, grep %d %s", res[1].Status, res[1].Body, res[2].Status, res[2].Body)
	}
	var globbed, grepped []string
	for _, r := range glob {
		globbed = append(globbed, strings.TrimPrefix(r.Path, ws+"/"))
	}
	for _, m := range grep {
		grepped = append(grepped, strings.TrimPrefix(m.Path, ws+"/"))
	}
	want := "a.txt sub/b.txt z/d.txt"
	if strings.Join(globbed, " ") != want || strings.Join(grepped, " ") != want {
		t.Fatalf("glob %v grep %v, want %s", globbed, grepped, want)
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
