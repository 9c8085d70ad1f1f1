package fileops

import (
	"errors"
	"testing"
)

func TestFormatRead(t *testing.T) {
	five := []byte("a\nb\nc\nd\ne\n")
	cases := []struct {
		name          string
		data          string
		offset, limit int
		want          string
		offErr        int // expected OffsetError.Lines, -1 for none
	}{
		{"all", string(five), 0, 0, "     1\ta\n     2\tb\n     3\tc\n     4\td\n     5\te", -1},
		{"window", string(five), 1, 2, "     2\tb\n     3\tc\n\n... (2 more lines)", -1},
		{"tail", string(five), 4, 10, "     5\te", -1},
		{"past end", string(five), 5, 1, "", 5},
		{"empty file", "", 0, 0, "", -1},
		{"no final newline", "x\ny", 0, 0, "     1\tx\n     2\ty", -1},
		{"blank lines kept", "\n\n", 0, 0, "     1\t\n     2\t", -1},
		{"invalid utf8", "a\xffb", 0, 0, "     1\ta\uFFFDb", -1},
		{"negative offset", "x\n", -3, 0, "     1\tx", -1},
	}
	for _, c := range cases {
		got, err := FormatRead([]byte(c.data), c.offset, c.limit)
		var oe *OffsetError
		switch {
		case c.offErr >= 0:
			if !errors.As(err, &oe) || oe.Lines != c.offErr || err.Error() != "Offset 5 exceeds file length (5 lines)" {
				t.Errorf("%s: err %v", c.name, err)
			}
		case err != nil || got != c.want:
			t.Errorf("%s: %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}

func TestApplyEdit(t *testing.T) {
	cases := []struct {
		content, old, new string
		all               bool
		want              string
		n                 int
		count             int // CountError.Count, -1 for success
	}{
		{"a b a", "a", "x", false, "", 0, 2},
		{"a b a", "a", "x", true, "x b x", 2, -1},
		{"a b", "b", "", false, "a ", 1, -1},
		{"a b", "z", "y", true, "", 0, 0},
		{"", "z", "y", false, "", 0, 0},
		{"ünï", "nï", "ñ", false, "üñ", 1, -1},
	}
	for _, c := range cases {
		out, n, err := ApplyEdit([]byte(c.content), c.old, c.new, c.all)
		var ce *CountError
		if c.count >= 0 {
			if !errors.As(err, &ce) || ce.Count != c.count {
				t.Errorf("%q/%q: err %v, want count %d", c.content, c.old, err, c.count)
			}
			continue
		}
		if err != nil || string(out) != c.want || n != c.n {
			t.Errorf("%q/%q: %q %d %v", c.content, c.old, out, n, err)
		}
	}
	if _, _, err := ApplyEdit([]byte("x"), "", "y", true); !errors.Is(err, ErrEmptyOld) {
		t.Errorf("empty old: %v", err)
	}
}

func TestGlob(t *testing.T) {
	cases := []struct {
		pattern, rel string
		want         bool
	}{
		{"*.py", "a.py", true},
		{"*.py", "x/y/a.py", true},
		{"**/*.py", "x/y/a.py", true},
		{"src/*.go", "a/src/x.go", true},
		{"src/*.go", "src/a/x.go", false},
		{"src/**/*.go", "src/a/b/x.go", true},
		{"*.py", "a.pyc", false},
		{"test_*.py", "t/test_x.py", true},
		{"", "a", false},
	}
	for _, c := range cases {
		if got := MatchGlob(NormalizeGlob(c.pattern), c.rel); got != c.want {
			t.Errorf("MatchGlob(%q, %q) = %v", c.pattern, c.rel, got)
		}
	}
	for in, want := range map[string]string{"**/*.ts": "*.ts", "./a/*": "a/*", "/x": "x", "**/**/y": "y"} {
		if got := NormalizeGlob(in); got != want {
			t.Errorf("NormalizeGlob(%q) = %q", in, got)
		}
	}
	for p, want := range map[string]string{"": "/w", ".": "/w", "/": "/w", "sub": "/w/sub", "/abs/x/../y": "/abs/y"} {
		if got := GlobRoot(p, "/w"); got != want {
			t.Errorf("GlobRoot(%q) = %q", p, got)
		}
	}
	if !Hidden(".git") || Hidden(".") || Hidden("a.b") || !IncludeMatch("*.md", "x.md") || IncludeMatch("*.md", "x.go") || !IncludeMatch("", "x") {
		t.Error("Hidden/IncludeMatch")
	}
}
