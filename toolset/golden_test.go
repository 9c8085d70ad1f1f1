package toolset_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/toolset"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/<name>, or rewrites it with -update. Golden files hold the
// exact tool output, byte for byte (no trailing newline is added).
func golden(t *testing.T, name, got string) {
	t.Helper()
	file := filepath.Join("testdata", filepath.FromSlash(name))
	if *update {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s\n got: %q\nwant: %q", file, got, want)
	}
}

type step struct{ tool, args string }

// callCase is one tool call whose output is compared with testdata/calls/<name>.golden.
type callCase struct {
	name    string
	opts    []toolset.Option
	setup   func(f *fakeSandbox)
	before  []step               // calls made first; they must not fail
	between func(f *fakeSandbox) // runs after before, ahead of the call
	tool    string
	args    string
	check   func(t *testing.T, f *fakeSandbox) // further assertions on the sandbox
}

func runCase(t *testing.T, c callCase) {
	t.Helper()
	f := newFake()
	if c.setup != nil {
		c.setup(f)
	}
	ts, err := toolset.New(f, c.opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, s := range c.before {
		if _, err := ts.Call(ctx, s.tool, []byte(s.args)); err != nil {
			t.Fatalf("before: %s %s: %v", s.tool, s.args, err)
		}
	}
	if c.between != nil {
		c.between(f)
	}
	out, err := ts.Call(ctx, c.tool, []byte(c.args))
	if err != nil {
		t.Fatalf("Call(%s, %s): %v", c.tool, c.args, err)
	}
	golden(t, "calls/"+c.name+".golden", out)
	if c.check != nil {
		c.check(t, f)
	}
}

func runCases(t *testing.T, cases []callCase) {
	t.Helper()
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("duplicate case %s", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runCase(t, c)
		})
	}
}

// failOn makes op fail with err (for any path).
func failOn(op string, err error) func(f *fakeSandbox) {
	return func(f *fakeSandbox) {
		f.fail = func(o, _ string) error {
			if o == op {
				return err
			}
			return nil
		}
	}
}

func wantContent(p, want string) func(t *testing.T, f *fakeSandbox) {
	return func(t *testing.T, f *fakeSandbox) {
		t.Helper()
		got, ok := f.content(p)
		if !ok || got != want {
			t.Errorf("%s = %q (exists %v), want %q", p, got, ok, want)
		}
	}
}

func numbered(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	return b.String()
}

var hashline = toolset.WithEditFormat(toolset.EditFormatHashline)

func TestLs(t *testing.T) {
	tree := func(f *fakeSandbox) {
		f.put("README.md", "# hi\n").put("src/main.go", "package main\n").put("go.mod", "module x\n").mkdir("docs")
	}
	runCases(t, []callCase{
		{name: "ls/contents", setup: tree, tool: "ls", args: `{}`},
		{name: "ls/default_path_null", setup: tree, tool: "ls", args: `{"path": null}`},
		{name: "ls/subdirectory", setup: tree, tool: "ls", args: `{"path": "src"}`},
		{name: "ls/empty_directory", setup: tree, tool: "ls", args: `{"path": "docs"}`},
		{name: "ls/missing", setup: tree, tool: "ls", args: `{"path": "nope"}`},
		{name: "ls/not_a_directory", setup: tree, tool: "ls", args: `{"path": "go.mod"}`},
		{name: "ls/sandbox_error", setup: failOn("LsInfo", errors.New("connection reset by peer")), tool: "ls", args: `{}`},
		{
			name:  "ls/ruleset_hides_denied_entries",
			setup: tree,
			opts: []toolset.Option{toolset.WithPermissions(&toolset.Ruleset{
				Default: toolset.Allow,
				Ls:      &toolset.OperationPermissions{Default: toolset.Allow, Rules: []toolset.Rule{{Pattern: "**/go.mod", Action: toolset.Deny}}},
			})},
			tool: "ls", args: `{}`,
		},
		{
			name:  "ls/ruleset_hides_everything",
			setup: func(f *fakeSandbox) { f.put("only.txt", "x") },
			opts: []toolset.Option{toolset.WithPermissions(&toolset.Ruleset{
				Default: toolset.Allow,
				Ls:      &toolset.OperationPermissions{Rules: []toolset.Rule{{Pattern: "**", Action: toolset.Deny}}},
			})},
			tool: "ls", args: `{}`,
		},
	})
}

func TestReadFile(t *testing.T) {
	files := func(f *fakeSandbox) {
		f.put("a.txt", "alpha\nbeta\ngamma\n").put("ten.txt", numbered(10)).put("empty.txt", "").put("src/x.go", "package x\n").put(".env", "KEY=1\n").put("private/notes.txt", "secret plans\n")
	}
	askPrivate := &toolset.Ruleset{
		Default: toolset.Allow,
		Read:    &toolset.OperationPermissions{Default: toolset.Allow, Rules: []toolset.Rule{{Pattern: "private/**", Action: toolset.Ask}}},
	}
	denyAbsolute := &toolset.Ruleset{
		Default: toolset.Allow,
		Read:    &toolset.OperationPermissions{Rules: []toolset.Rule{{Pattern: "/workspace/private/**", Action: toolset.Deny}}},
	}
	small := func(f *fakeSandbox) { files(f); f.maxBytes = 8 }
	runCases(t, []callCase{
		{name: "read_file/whole_file", setup: files, tool: "read_file", args: `{"path": "a.txt"}`},
		{name: "read_file/offset_and_limit", setup: files, tool: "read_file", args: `{"path": "ten.txt", "offset": 2, "limit": 3}`},
		{name: "read_file/lax_integer_arguments", setup: files, tool: "read_file", args: `{"path": "ten.txt", "offset": "8", "limit": 1.0}`},
		{name: "read_file/last_lines", setup: files, tool: "read_file", args: `{"path": "ten.txt", "offset": 8}`},
		{name: "read_file/empty_file", setup: files, tool: "read_file", args: `{"path": "empty.txt"}`},
		{name: "read_file/not_found", setup: files, tool: "read_file", args: `{"path": "missing.txt"}`},
		{name: "read_file/is_directory", setup: files, tool: "read_file", args: `{"path": "src"}`},
		{name: "read_file/offset_past_end", setup: files, tool: "read_file", args: `{"path": "a.txt", "offset": 5}`},
		{name: "read_file/too_large", setup: small, tool: "read_file", args: `{"path": "ten.txt"}`},
		{name: "read_file/sandbox_error", setup: func(f *fakeSandbox) { files(f); failOn("Read", errors.New("read timed out after 30s"))(f) }, tool: "read_file", args: `{"path": "a.txt"}`},
		{name: "read_file/denied_secret", setup: files, opts: []toolset.Option{toolset.WithPermissions(toolset.DefaultRuleset())}, tool: "read_file", args: `{"path": ".env"}`},
		{name: "read_file/denied_secret_spelled_oddly", setup: files, opts: []toolset.Option{toolset.WithPermissions(toolset.DefaultRuleset())}, tool: "read_file", args: `{"path": "./src/../.env"}`},
		{name: "read_file/ask_rule_without_approval", setup: files, opts: []toolset.Option{toolset.WithPermissions(askPrivate)}, tool: "read_file", args: `{"path": "private/notes.txt"}`},
		{name: "read_file/ask_rule_approved", setup: files, opts: []toolset.Option{toolset.WithPermissions(toolset.StrictRuleset())}, tool: "read_file", args: `{"path": "a.txt"}`},
		{name: "read_file/denied_via_work_dir", setup: files, opts: []toolset.Option{toolset.WithPermissions(denyAbsolute), toolset.WithWorkDir("/workspace")}, tool: "read_file", args: `{"path": "private/notes.txt"}`},
		{name: "read_file/allowed_without_work_dir", setup: files, opts: []toolset.Option{toolset.WithPermissions(denyAbsolute)}, tool: "read_file", args: `{"path": "private/notes.txt"}`},
	})
}

func TestReadFileHashline(t *testing.T) {
	files := func(f *fakeSandbox) {
		f.put("a.txt", "alpha\nbeta\ngamma\n").put("ten.txt", numbered(10)).put("empty.txt", "").put("blank.txt", "a\n\n").put("crlf.txt", "one\r\ntwo\r\n").put("noeol.txt", "x\ny").put("bin.dat", "ok\xff\xfe\n").put("src/x.go", "package x\n")
	}
	opts := []toolset.Option{hashline}
	runCases(t, []callCase{
		{name: "hashline_read/whole_file", setup: files, opts: opts, tool: "read_file", args: `{"path": "a.txt"}`},
		{name: "hashline_read/offset_and_limit", setup: files, opts: opts, tool: "read_file", args: `{"path": "ten.txt", "offset": 2, "limit": 3}`},
		{name: "hashline_read/empty_file", setup: files, opts: opts, tool: "read_file", args: `{"path": "empty.txt"}`},
		{name: "hashline_read/blank_last_line", setup: files, opts: opts, tool: "read_file", args: `{"path": "blank.txt"}`},
		{name: "hashline_read/crlf", setup: files, opts: opts, tool: "read_file", args: `{"path": "crlf.txt"}`},
		{name: "hashline_read/no_final_newline", setup: files, opts: opts, tool: "read_file", args: `{"path": "noeol.txt"}`},
		{name: "hashline_read/invalid_utf8", setup: files, opts: opts, tool: "read_file", args: `{"path": "bin.dat"}`},
		{name: "hashline_read/not_found", setup: files, opts: opts, tool: "read_file", args: `{"path": "missing.txt"}`},
		{name: "hashline_read/is_directory", setup: files, opts: opts, tool: "read_file", args: `{"path": "src"}`},
		{name: "hashline_read/offset_past_end", setup: files, opts: opts, tool: "read_file", args: `{"path": "a.txt", "offset": 3}`},
		{name: "hashline_read/too_large", setup: func(f *fakeSandbox) { files(f); f.maxBytes = 4 }, opts: opts, tool: "read_file", args: `{"path": "a.txt"}`},
		{name: "hashline_read/denied_secret", setup: func(f *fakeSandbox) { f.put("id.pem", "k") }, opts: []toolset.Option{hashline, toolset.WithPermissions(toolset.ReadOnlyRuleset())}, tool: "read_file", args: `{"path": "id.pem"}`},
	})
}

func TestWriteFile(t *testing.T) {
	base := func(f *fakeSandbox) { f.put("src/x.go", "package x\n").put("a.txt", "file\n") }
	runCases(t, []callCase{
		{name: "write_file/new_file", setup: base, tool: "write_file", args: `{"path": "notes/todo.txt", "content": "one\ntwo\nthree"}`, check: wantContent("notes/todo.txt", "one\ntwo\nthree")},
		{name: "write_file/final_newline", setup: base, tool: "write_file", args: `{"path": "b.txt", "content": "one\ntwo\n"}`, check: wantContent("b.txt", "one\ntwo\n")},
		{name: "write_file/empty_content", setup: base, tool: "write_file", args: `{"path": "empty.txt", "content": ""}`, check: wantContent("empty.txt", "")},
		{name: "write_file/only_newline", setup: base, tool: "write_file", args: `{"path": "nl.txt", "content": "\n"}`},
		{name: "write_file/crlf_and_cr", setup: base, tool: "write_file", args: `{"path": "w.txt", "content": "a\r\nb\rc\r\n"}`},
		{name: "write_file/python_line_boundaries", setup: base, tool: "write_file", args: `{"path": "u.txt", "content": "a\u2028b\fc\u000bd\u0085e\u001cf"}`},
		{name: "write_file/overwrite", setup: base, tool: "write_file", args: `{"path": "a.txt", "content": "new"}`, check: wantContent("a.txt", "new")},
		{name: "write_file/absolute_path", setup: base, tool: "write_file", args: `{"path": "/tmp/out.txt", "content": "x\n"}`, check: wantContent("/tmp/out.txt", "x\n")},
		{name: "write_file/is_directory", setup: base, tool: "write_file", args: `{"path": "src", "content": "x"}`},
		{name: "write_file/parent_is_a_file", setup: base, tool: "write_file", args: `{"path": "a.txt/b.txt", "content": "x"}`},
		{name: "write_file/too_large", setup: func(f *fakeSandbox) { base(f); f.maxBytes = 3 }, tool: "write_file", args: `{"path": "big.txt", "content": "abcdef"}`},
		{name: "write_file/sandbox_error", setup: func(f *fakeSandbox) {
			base(f)
			failOn("Write", errors.New("write /workspace/q.txt: disk quota exceeded"))(f)
		}, tool: "write_file", args: `{"path": "q.txt", "content": "x"}`},
		{name: "write_file/denied_system_path", setup: base, opts: []toolset.Option{toolset.WithPermissions(toolset.PermissiveRuleset())}, tool: "write_file", args: `{"path": "/etc/passwd", "content": "root::0:0::/:/bin/sh"}`, check: func(t *testing.T, f *fakeSandbox) {
			if _, ok := f.content("/etc/passwd"); ok {
				t.Error("a denied write reached the sandbox")
			}
		}},
		{name: "write_file/denied_secret", setup: base, opts: []toolset.Option{toolset.WithPermissions(toolset.DefaultRuleset())}, tool: "write_file", args: `{"path": "config/credentials.json", "content": "{}"}`},
	})
}

func TestEditFile(t *testing.T) {
	base := func(f *fakeSandbox) {
		f.put("a.txt", "hello world\n").put("x.txt", "x = 1\nx = 2\nx = 3\n").put("src/x.go", "package x\n").put(".env", "A=1\n").put("empty.txt", "")
	}
	change := func(f *fakeSandbox) { f.put("a.txt", "hello there world\n") }
	runCases(t, []callCase{
		{name: "edit_file/single", setup: base, tool: "edit_file", args: `{"path": "a.txt", "old_string": "world", "new_string": "gophers"}`, check: wantContent("a.txt", "hello gophers\n")},
		{name: "edit_file/replace_all", setup: base, tool: "edit_file", args: `{"path": "x.txt", "old_string": "x =", "new_string": "y =", "replace_all": true}`, check: wantContent("x.txt", "y = 1\ny = 2\ny = 3\n")},
		{name: "edit_file/replace_all_lax_bool", setup: base, tool: "edit_file", args: `{"path": "x.txt", "old_string": "x =", "new_string": "z =", "replace_all": "true"}`, check: wantContent("x.txt", "z = 1\nz = 2\nz = 3\n")},
		{name: "edit_file/string_not_found", setup: base, tool: "edit_file", args: `{"path": "a.txt", "old_string": "planet", "new_string": "moon"}`, check: wantContent("a.txt", "hello world\n")},
		{name: "edit_file/string_ambiguous", setup: base, tool: "edit_file", args: `{"path": "x.txt", "old_string": "x", "new_string": "y"}`, check: wantContent("x.txt", "x = 1\nx = 2\nx = 3\n")},
		{name: "edit_file/empty_file", setup: base, tool: "edit_file", args: `{"path": "empty.txt", "old_string": "a", "new_string": "b"}`},
		{name: "edit_file/empty_old_string", setup: base, tool: "edit_file", args: `{"path": "a.txt", "old_string": "", "new_string": "x"}`, check: wantContent("a.txt", "hello world\n")},
		{name: "edit_file/file_not_found", setup: base, tool: "edit_file", args: `{"path": "nope.txt", "old_string": "a", "new_string": "b"}`},
		{name: "edit_file/is_directory", setup: base, tool: "edit_file", args: `{"path": "src", "old_string": "a", "new_string": "b"}`},
		{name: "edit_file/too_large", setup: func(f *fakeSandbox) { base(f); f.maxBytes = 4 }, tool: "edit_file", args: `{"path": "a.txt", "old_string": "hello", "new_string": "bye"}`},
		{name: "edit_file/sandbox_error", setup: func(f *fakeSandbox) { base(f); failOn("Edit", errors.New("edit a.txt: input/output error"))(f) }, tool: "edit_file", args: `{"path": "a.txt", "old_string": "hello", "new_string": "bye"}`},
		{
			name: "edit_file/stale_after_read", setup: base,
			before: []step{{"read_file", `{"path": "a.txt"}`}}, between: change,
			tool: "edit_file", args: `{"path": "a.txt", "old_string": "world", "new_string": "gophers"}`,
			check: wantContent("a.txt", "hello there world\n"),
		},
		{
			name: "edit_file/stale_spelled_differently", setup: base,
			before: []step{{"read_file", `{"path": "a.txt"}`}}, between: change,
			tool: "edit_file", args: `{"path": "./a.txt", "old_string": "world", "new_string": "gophers"}`,
		},
		{
			name: "edit_file/stale_after_write", setup: base,
			before: []step{{"write_file", `{"path": "w.txt", "content": "v1\n"}`}}, between: func(f *fakeSandbox) { f.put("w.txt", "v2\n") },
			tool: "edit_file", args: `{"path": "w.txt", "old_string": "v", "new_string": "version "}`,
		},
		{
			name: "edit_file/fresh_after_read", setup: base,
			before: []step{{"read_file", `{"path": "a.txt"}`}},
			tool:   "edit_file", args: `{"path": "a.txt", "old_string": "world", "new_string": "gophers"}`,
			check: wantContent("a.txt", "hello gophers\n"),
		},
		{
			name: "edit_file/fresh_after_write", setup: base,
			before: []step{{"write_file", `{"path": "w.txt", "content": "v1\n"}`}},
			tool:   "edit_file", args: `{"path": "w.txt", "old_string": "v1", "new_string": "v2"}`,
			check: wantContent("w.txt", "v2\n"),
		},
		{
			name: "edit_file/second_edit_after_own_edit", setup: base,
			before: []step{{"read_file", `{"path": "x.txt"}`}, {"edit_file", `{"path": "x.txt", "old_string": "x = 1", "new_string": "x = 10"}`}, {"edit_file", `{"path": "x.txt", "old_string": "x =", "new_string": "y =", "replace_all": true}`}},
			tool:   "edit_file", args: `{"path": "x.txt", "old_string": "y = 10", "new_string": "y = 100"}`,
			check: wantContent("x.txt", "y = 100\ny = 2\ny = 3\n"),
		},
		{
			name: "edit_file/stale_after_own_edit_and_outside_change", setup: base,
			before:  []step{{"read_file", `{"path": "a.txt"}`}, {"edit_file", `{"path": "a.txt", "old_string": "hello", "new_string": "hi"}`}},
			between: change,
			tool:    "edit_file", args: `{"path": "a.txt", "old_string": "world", "new_string": "gophers"}`,
		},
		{
			name: "edit_file/unread_file_not_guarded", setup: base,
			between: change,
			tool:    "edit_file", args: `{"path": "a.txt", "old_string": "world", "new_string": "gophers"}`,
			check: wantContent("a.txt", "hello there gophers\n"),
		},
		{
			name: "edit_file/deleted_after_read", setup: base,
			before:  []step{{"read_file", `{"path": "a.txt"}`}},
			between: func(f *fakeSandbox) { f.mu.Lock(); delete(f.files, "/workspace/a.txt"); f.mu.Unlock() },
			tool:    "edit_file", args: `{"path": "a.txt", "old_string": "world", "new_string": "gophers"}`,
		},
		{name: "edit_file/denied_secret", setup: base, opts: []toolset.Option{toolset.WithPermissions(toolset.DefaultRuleset())}, tool: "edit_file", args: `{"path": ".env", "old_string": "A=1", "new_string": "A=2"}`, check: wantContent(".env", "A=1\n")},
	})
}

// TestEditFileGuardReReads checks that a read after an outside change lets the next edit through.
func TestEditFileGuardReReads(t *testing.T) {
	f := newFake().put("a.txt", "hello world\n")
	ts, err := toolset.New(f)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	call := func(tool, args string) string {
		t.Helper()
		out, err := ts.Call(ctx, tool, []byte(args))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	call("read_file", `{"path": "a.txt"}`)
	f.put("a.txt", "hello there world\n")
	edit := `{"path": "a.txt", "old_string": "world", "new_string": "gophers"}`
	if out := call("edit_file", edit); !strings.Contains(out, "changed since you last read it") {
		t.Fatalf("edit after outside change = %q, want the staleness error", out)
	}
	call("read_file", `{"path": "a.txt"}`)
	if out := call("edit_file", edit); out != "Edited a.txt: replaced 1 occurrence(s)" {
		t.Fatalf("edit after re-read = %q", out)
	}
}

func h(line string) string { return toolset.LineHash(line) }

func TestHashlineEdit(t *testing.T) {
	const file = "one\ntwo\nthree\nfour\n"
	base := func(f *fakeSandbox) {
		f.put("f.txt", file).put("noeol.txt", "a\nb").put("empty.txt", "").put("bin.dat", "ok\xff\n").put("src/x.go", "package x\n")
	}
	opts := []toolset.Option{hashline}
	edit := func(format string, a ...any) string { return fmt.Sprintf(format, a...) }
	runCases(t, []callCase{
		{name: "hashline_edit/replace_one_line", setup: base, opts: opts, tool: "hashline_edit",
			args:  edit(`{"path": "f.txt", "start_line": 2, "start_hash": %q, "new_content": "TWO"}`, h("two")),
			check: wantContent("f.txt", "one\nTWO\nthree\nfour\n")},
		{name: "hashline_edit/replace_range_same_count", setup: base, opts: opts, tool: "hashline_edit",
			args:  edit(`{"path": "f.txt", "start_line": 2, "start_hash": %q, "end_line": 3, "end_hash": %q, "new_content": "2\n3"}`, h("two"), h("three")),
			check: wantContent("f.txt", "one\n2\n3\nfour\n")},
		{name: "hashline_edit/replace_range_more_lines", setup: base, opts: opts, tool: "hashline_edit",
			args:  edit(`{"path": "f.txt", "start_line": 1, "start_hash": %q, "end_line": 2, "end_hash": %q, "new_content": "a\nb\nc"}`, h("one"), h("two")),
			check: wantContent("f.txt", "a\nb\nc\nthree\nfour\n")},
		{name: "hashline_edit/range_without_end_hash", setup: base, opts: opts, tool: "hashline_edit",
			args:  edit(`{"path": "f.txt", "start_line": 3, "start_hash": %q, "end_line": "4", "new_content": "end"}`, h("three")),
			check: wantContent("f.txt", "one\ntwo\nend\n")},
		{name: "hashline_edit/insert_after", setup: base, opts: opts, tool: "hashline_edit",
			args:  edit(`{"path": "f.txt", "start_line": 4, "start_hash": %q, "new_content": "five\nsix", "insert_after": true}`, h("four")),
			check: wantContent("f.txt", "one\ntwo\nthree\nfour\nfive\nsix\n")},
		{name: "hashline_edit/delete_range", setup: base, opts: opts, tool: "hashline_edit",
			args:  edit(`{"path": "f.txt", "start_line": 2, "start_hash": %q, "end_line": 3, "end_hash": %q, "new_content": ""}`, h("two"), h("three")),
			check: wantContent("f.txt", "one\nfour\n")},
		{name: "hashline_edit/no_final_newline_kept", setup: base, opts: opts, tool: "hashline_edit",
			args:  edit(`{"path": "noeol.txt", "start_line": 2, "start_hash": %q, "new_content": "B"}`, h("b")),
			check: wantContent("noeol.txt", "a\nB")},
		{name: "hashline_edit/null_optionals", setup: base, opts: opts, tool: "hashline_edit",
			args:  edit(`{"path": "f.txt", "start_line": 1, "start_hash": %q, "new_content": "ONE", "end_line": null, "end_hash": null, "insert_after": null}`, h("one")),
			check: wantContent("f.txt", "ONE\ntwo\nthree\nfour\n")},
		{name: "hashline_edit/line_out_of_range", setup: base, opts: opts, tool: "hashline_edit",
			args: edit(`{"path": "f.txt", "start_line": 9, "start_hash": "00", "new_content": "x"}`), check: wantContent("f.txt", file)},
		{name: "hashline_edit/line_zero", setup: base, opts: opts, tool: "hashline_edit",
			args: `{"path": "f.txt", "start_line": 0, "start_hash": "00", "new_content": "x"}`},
		{name: "hashline_edit/empty_file", setup: base, opts: opts, tool: "hashline_edit",
			args: `{"path": "empty.txt", "start_line": 1, "start_hash": "d4", "new_content": "x"}`},
		{name: "hashline_edit/insert_after_with_range", setup: base, opts: opts, tool: "hashline_edit",
			args: edit(`{"path": "f.txt", "start_line": 1, "start_hash": %q, "end_line": 2, "new_content": "x", "insert_after": true}`, h("one"))},
		{name: "hashline_edit/insert_after_with_end_hash", setup: base, opts: opts, tool: "hashline_edit",
			args: edit(`{"path": "f.txt", "start_line": 1, "start_hash": %q, "end_hash": "ab", "new_content": "x", "insert_after": true}`, h("one"))},
		{name: "hashline_edit/start_hash_mismatch", setup: base, opts: opts, tool: "hashline_edit",
			args: edit(`{"path": "f.txt", "start_line": 2, "start_hash": %q, "new_content": "x"}`, h("one")), check: wantContent("f.txt", file)},
		{name: "hashline_edit/end_before_start", setup: base, opts: opts, tool: "hashline_edit",
			args: edit(`{"path": "f.txt", "start_line": 3, "start_hash": %q, "end_line": 2, "new_content": "x"}`, h("three"))},
		{name: "hashline_edit/end_out_of_range", setup: base, opts: opts, tool: "hashline_edit",
			args: edit(`{"path": "f.txt", "start_line": 3, "start_hash": %q, "end_line": 7, "new_content": "x"}`, h("three"))},
		{name: "hashline_edit/end_hash_mismatch", setup: base, opts: opts, tool: "hashline_edit",
			args: edit(`{"path": "f.txt", "start_line": 1, "start_hash": %q, "end_line": 4, "end_hash": %q, "new_content": "x"}`, h("one"), h("three"))},
		{name: "hashline_edit/file_not_found", setup: base, opts: opts, tool: "hashline_edit",
			args: `{"path": "nope.txt", "start_line": 1, "start_hash": "00", "new_content": "x"}`},
		{name: "hashline_edit/is_directory", setup: base, opts: opts, tool: "hashline_edit",
			args: `{"path": "src", "start_line": 1, "start_hash": "00", "new_content": "x"}`},
		{name: "hashline_edit/not_utf8", setup: base, opts: opts, tool: "hashline_edit",
			args: edit(`{"path": "bin.dat", "start_line": 1, "start_hash": %q, "new_content": "x"}`, h("ok\ufffd")), check: wantContent("bin.dat", "ok\xff\n")},
		{name: "hashline_edit/write_fails", setup: func(f *fakeSandbox) { base(f); failOn("Write", errors.New("read-only file system"))(f) }, opts: opts, tool: "hashline_edit",
			args: edit(`{"path": "f.txt", "start_line": 1, "start_hash": %q, "new_content": "x"}`, h("one"))},
		{name: "hashline_edit/stale_after_read", setup: base, opts: opts,
			before: []step{{"read_file", `{"path": "f.txt"}`}}, between: func(f *fakeSandbox) { f.put("f.txt", "one\ntwo\nthree\nFOUR\n") },
			tool: "hashline_edit", args: edit(`{"path": "f.txt", "start_line": 1, "start_hash": %q, "new_content": "x"}`, h("one")),
			check: wantContent("f.txt", "one\ntwo\nthree\nFOUR\n")},
		{name: "hashline_edit/second_edit_after_own_edit", setup: base, opts: opts,
			before: []step{{"read_file", `{"path": "f.txt"}`}, {"hashline_edit", edit(`{"path": "f.txt", "start_line": 4, "start_hash": %q, "new_content": "4"}`, h("four"))}},
			tool:   "hashline_edit", args: edit(`{"path": "f.txt", "start_line": 1, "start_hash": %q, "new_content": "1"}`, h("one")),
			check: wantContent("f.txt", "1\ntwo\nthree\n4\n")},
		{name: "hashline_edit/denied_secret", setup: func(f *fakeSandbox) { base(f); f.put("server.key", "k\n") }, opts: []toolset.Option{hashline, toolset.WithPermissions(toolset.DefaultRuleset())}, tool: "hashline_edit",
			args: edit(`{"path": "server.key", "start_line": 1, "start_hash": %q, "new_content": "x"}`, h("k")), check: wantContent("server.key", "k\n")},
	})
}

func TestGlob(t *testing.T) {
	tree := func(f *fakeSandbox) {
		f.put("main.go", "").put("pkg/a.go", "").put("pkg/a_test.go", "").put("README.md", "").put("secrets/token.go", "")
	}
	many := func(f *fakeSandbox) {
		for i := range 105 {
			f.put(fmt.Sprintf("gen/f%03d.txt", i), "")
		}
	}
	runCases(t, []callCase{
		{name: "glob/found", setup: tree, tool: "glob", args: `{"pattern": "*.go"}`},
		{name: "glob/double_star", setup: tree, tool: "glob", args: `{"pattern": "**/*_test.go"}`},
		{name: "glob/under_path", setup: tree, tool: "glob", args: `{"pattern": "*.go", "path": "pkg"}`},
		{name: "glob/no_match", setup: tree, tool: "glob", args: `{"pattern": "*.rs"}`},
		{name: "glob/no_match_under_path", setup: tree, tool: "glob", args: `{"pattern": "*.rs", "path": "pkg"}`},
		{name: "glob/missing_directory", setup: tree, tool: "glob", args: `{"pattern": "*.go", "path": "nope"}`},
		{name: "glob/over_100", setup: many, tool: "glob", args: `{"pattern": "*.txt"}`},
		{name: "glob/exactly_100", setup: func(f *fakeSandbox) {
			for i := range 100 {
				f.put(fmt.Sprintf("gen/f%03d.txt", i), "")
			}
		}, tool: "glob", args: `{"pattern": "*.txt"}`},
		{name: "glob/invalid_pattern", setup: tree, tool: "glob", args: `{"pattern": "[a-"}`},
		{name: "glob/sandbox_error", setup: failOn("GlobInfo", errors.New("find: timed out after 120s")), tool: "glob", args: `{"pattern": "*"}`},
		{name: "glob/ruleset_hides_denied", setup: tree, opts: []toolset.Option{toolset.WithPermissions(&toolset.Ruleset{
			Default: toolset.Allow,
			Glob:    &toolset.OperationPermissions{Rules: []toolset.Rule{{Pattern: "**/secrets/**", Action: toolset.Deny}}},
		})}, tool: "glob", args: `{"pattern": "*.go"}`},
	})
}

func TestGrep(t *testing.T) {
	tree := func(f *fakeSandbox) {
		f.put("main.go", "package main\n\nfunc main() { println(\"TODO\") }\n").
			put("pkg/a.go", "package pkg\n// TODO: one\n// TODO: two\n").
			put("README.md", "TODO list\n").
			put(".hidden/notes.go", "TODO hidden\n").
			put(".env", "TODO=1\n").
			put("secrets.txt", "TODO secret\n")
	}
	many := func(f *fakeSandbox) {
		for i := range 53 {
			f.put(fmt.Sprintf("m/f%02d.txt", i), "needle\nneedle\n")
		}
	}
	long := func(f *fakeSandbox) {
		f.put("long.txt", "needle "+strings.Repeat("é", 150)+"\n").put("ascii.txt", "needle "+strings.Repeat("x", 150)+"\n")
	}
	runCases(t, []callCase{
		{name: "grep/files_with_matches_default", setup: tree, tool: "grep", args: `{"pattern": "TODO"}`},
		{name: "grep/content", setup: tree, tool: "grep", args: `{"pattern": "TODO", "output_mode": "content"}`},
		{name: "grep/count", setup: tree, tool: "grep", args: `{"pattern": "TODO", "output_mode": "count"}`},
		{name: "grep/no_matches", setup: tree, tool: "grep", args: `{"pattern": "FIXME"}`},
		{name: "grep/regex", setup: tree, tool: "grep", args: `{"pattern": "^// TODO: (one|two)$", "output_mode": "content"}`},
		{name: "grep/glob_pattern", setup: tree, tool: "grep", args: `{"pattern": "TODO", "glob_pattern": "*.md"}`},
		{name: "grep/path_directory", setup: tree, tool: "grep", args: `{"pattern": "TODO", "path": "pkg", "output_mode": "content"}`},
		{name: "grep/path_file", setup: tree, tool: "grep", args: `{"pattern": "package", "path": "main.go", "output_mode": "content"}`},
		{name: "grep/null_arguments", setup: tree, tool: "grep", args: `{"pattern": "TODO", "path": null, "glob_pattern": null, "output_mode": null, "ignore_hidden": null}`},
		{name: "grep/include_hidden", setup: tree, tool: "grep", args: `{"pattern": "TODO", "ignore_hidden": false}`},
		{name: "grep/include_hidden_by_default_option", setup: tree, opts: []toolset.Option{toolset.WithDefaultIgnoreHidden(false)}, tool: "grep", args: `{"pattern": "TODO"}`},
		{name: "grep/ruleset_hides_read_denied", setup: tree, opts: []toolset.Option{toolset.WithPermissions(toolset.DefaultRuleset())}, tool: "grep", args: `{"pattern": "TODO", "ignore_hidden": false, "output_mode": "content"}`},
		{name: "grep/ruleset_hides_all_matches", setup: tree, opts: []toolset.Option{toolset.WithPermissions(toolset.DefaultRuleset())}, tool: "grep", args: `{"pattern": "secret", "output_mode": "content"}`},
		{name: "grep/files_over_50", setup: many, tool: "grep", args: `{"pattern": "needle"}`},
		{name: "grep/content_over_50", setup: many, tool: "grep", args: `{"pattern": "needle", "output_mode": "content"}`},
		{name: "grep/count_over_50", setup: many, tool: "grep", args: `{"pattern": "needle", "output_mode": "count"}`},
		{name: "grep/long_lines_cut_by_character", setup: long, tool: "grep", args: `{"pattern": "needle", "output_mode": "content"}`},
		{name: "grep/missing_path", setup: tree, tool: "grep", args: `{"pattern": "TODO", "path": "nope"}`},
		{name: "grep/invalid_regex", setup: tree, tool: "grep", args: `{"pattern": "(unclosed"}`},
		{name: "grep/sandbox_error", setup: failOn("GrepRaw", errors.New("grep: timed out after 120s")), tool: "grep", args: `{"pattern": "x"}`},
	})
}

func TestExecute(t *testing.T) {
	respond := func(r podsandbox.ExecuteResponse) func(f *fakeSandbox) {
		return func(f *fakeSandbox) {
			f.exec = func(string, podsandbox.ExecConfig) (*podsandbox.ExecuteResponse, error) { return &r, nil }
		}
	}
	wantTimeout := func(d string) func(t *testing.T, f *fakeSandbox) {
		return func(t *testing.T, f *fakeSandbox) {
			t.Helper()
			if got := f.lastExec.Timeout.String(); got != d {
				t.Errorf("timeout passed to Execute = %s, want %s", got, d)
			}
		}
	}
	noExec := func(t *testing.T, f *fakeSandbox) {
		t.Helper()
		for _, c := range f.callLog() {
			if strings.HasPrefix(c, "Execute ") {
				t.Errorf("a refused command reached the sandbox: %s", c)
			}
		}
	}
	permissive := []toolset.Option{toolset.WithPermissions(toolset.PermissiveRuleset())}
	runCases(t, []callCase{
		{name: "execute/output", setup: respond(podsandbox.ExecuteResponse{Output: "hello\nworld\n"}), tool: "execute", args: `{"command": "echo hello; echo world"}`, check: wantTimeout("2m0s")},
		{name: "execute/no_output", tool: "execute", args: `{"command": "true"}`},
		{name: "execute/custom_timeout", tool: "execute", args: `{"command": "make", "timeout": 600}`, check: wantTimeout("10m0s")},
		{name: "execute/fractional_timeout", tool: "execute", args: `{"command": "make", "timeout": "1.5"}`, check: wantTimeout("1.5s")},
		{name: "execute/null_timeout", tool: "execute", args: `{"command": "make", "timeout": null}`, check: wantTimeout("30m0s")},
		{name: "execute/zero_timeout", tool: "execute", args: `{"command": "make", "timeout": 0}`, check: noExec},
		{name: "execute/failed", setup: respond(podsandbox.ExecuteResponse{Output: "FAIL: TestX\n", ExitCode: 1}), tool: "execute", args: `{"command": "go test ./..."}`},
		{name: "execute/failed_without_output", setup: respond(podsandbox.ExecuteResponse{ExitCode: 127}), tool: "execute", args: `{"command": "nosuchcmd"}`},
		{name: "execute/truncated", setup: respond(podsandbox.ExecuteResponse{Output: "aaaa", Truncated: true}), tool: "execute", args: `{"command": "yes a"}`},
		{name: "execute/truncated_with_output_file", setup: respond(podsandbox.ExecuteResponse{Output: "a\n" + fmt.Sprintf(podsandbox.OmittedMarker, 99996) + "z\n", Truncated: true,
			StdoutTruncated: true, StdoutBytes: 100000, OutputFile: podsandbox.OutputDir + "/out-0001764600000000000000-0a1b2c3d.log"}), tool: "execute", args: `{"command": "seq 100000"}`},
		{name: "execute/failed_and_truncated", setup: respond(podsandbox.ExecuteResponse{Output: "bbbb", Truncated: true, ExitCode: 2}), tool: "execute", args: `{"command": "build"}`},
		{name: "execute/timed_out", setup: respond(podsandbox.ExecuteResponse{Output: "step 1\nstep 2\n", TimedOut: true, ExitCode: podsandbox.TimeoutExitCode}), tool: "execute", args: `{"command": "sleep 999", "timeout": 1}`},
		{name: "execute/timed_out_without_output", setup: respond(podsandbox.ExecuteResponse{TimedOut: true, ExitCode: podsandbox.TimeoutExitCode}), tool: "execute", args: `{"command": "sleep 999"}`},
		{name: "execute/sandbox_error", setup: failOn("Execute", errors.New("exec: websocket closed")), tool: "execute", args: `{"command": "ls"}`},
		{name: "execute/output_incomplete", setup: failOn("Execute", fmt.Errorf("stream: %w", podsandbox.ErrOutputIncomplete)), tool: "execute", args: `{"command": "ls"}`},
		{name: "execute/denied_dangerous_command", opts: permissive, tool: "execute", args: `{"command": "rm -rf /"}`, check: noExec},
		{name: "execute/denied_command_naming_secret", opts: permissive, tool: "execute", args: `{"command": "cat .env | head"}`, check: noExec},
		{name: "execute/denied_command_naming_secret_in_operator", opts: permissive, tool: "execute", args: `{"command": "head<.env"}`, check: noExec},
		{name: "execute/denied_command_naming_secret_in_flag", opts: permissive, tool: "execute", args: `{"command": "tool --config=/home/u/.ssh/id_rsa"}`, check: noExec},
		{name: "execute/denied_command_writing_system_path", opts: permissive, tool: "execute", args: `{"command": "echo x > '/etc/hosts'"}`, check: noExec},
		{name: "execute/allowed_by_ruleset", setup: respond(podsandbox.ExecuteResponse{Output: "ok\n"}), opts: permissive, tool: "execute", args: `{"command": "go build ./..."}`},
		{name: "execute/ask_rule_without_approval", opts: []toolset.Option{toolset.WithExecuteApproval(false), toolset.WithPermissions(&toolset.Ruleset{
			Default: toolset.Allow,
			Execute: &toolset.OperationPermissions{Rules: []toolset.Rule{{Pattern: "git push*", Action: toolset.Ask}}},
		})}, tool: "execute", args: `{"command": "git push --force"}`, check: noExec},
	})
}
