// Package fileops holds the pure parts of the file operations, shared by the client's API transport
// (which fetches raw data over pods/exec) and the in-pod server, so both transports give the same
// results byte for byte.
package fileops

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
)

// OffsetError: the Read offset is past the end of the file.
type OffsetError struct{ Offset, Lines int }

func (e *OffsetError) Error() string {
	return fmt.Sprintf("Offset %d exceeds file length (%d lines)", e.Offset, e.Lines)
}

// CountError: Edit's old string occurs Count times where exactly one was needed (or zero times).
type CountError struct{ Count int }

func (e *CountError) Error() string { return fmt.Sprintf("old string found %d times", e.Count) }

// ErrEmptyOld: Edit was asked to replace the empty string.
var ErrEmptyOld = errors.New("old_string must not be empty")

// SplitLines splits data into lines: "\n" ends a line, a last line without one still counts, and a
// final "\n" does not start an empty line. Invalid UTF-8 is replaced by U+FFFD.
func SplitLines(data []byte) []string {
	if len(data) == 0 {
		return nil
	}
	s := strings.ToValidUTF8(string(data), "\uFFFD")
	s = strings.TrimSuffix(s, "\n")
	return strings.Split(s, "\n")
}

// FormatRead renders lines [offset, offset+limit) of data as "%6d\t<line>" joined by "\n", with
// "\n\n... (N more lines)" when lines remain after them. limit <= 0 means 2000; offset < 0 means 0.
// An offset past the end of a non-empty file is an *OffsetError; an empty file reads as "".
func FormatRead(data []byte, offset, limit int) (string, error) {
	if limit <= 0 {
		limit = 2000
	}
	if offset < 0 {
		offset = 0
	}
	lines := SplitLines(data)
	if len(lines) == 0 {
		return "", nil
	}
	if offset >= len(lines) {
		return "", &OffsetError{Offset: offset, Lines: len(lines)}
	}
	end := min(offset+limit, len(lines))
	var b strings.Builder
	for i := offset; i < end; i++ {
		if i > offset {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%6d\t%s", i+1, lines[i])
	}
	if rest := len(lines) - end; rest > 0 {
		fmt.Fprintf(&b, "\n\n... (%d more lines)", rest)
	}
	return b.String(), nil
}

// ApplyEdit replaces old by new in content: every occurrence when replaceAll, else the single one.
// It returns the new content and the number of occurrences replaced. old must be non-empty; when it
// does not occur, or occurs more than once without replaceAll, the error is a *CountError.
func ApplyEdit(content []byte, old, new string, replaceAll bool) ([]byte, int, error) {
	if old == "" {
		return nil, 0, ErrEmptyOld
	}
	n := bytes.Count(content, []byte(old))
	if n == 0 || (n > 1 && !replaceAll) {
		return nil, 0, &CountError{Count: n}
	}
	if !replaceAll {
		return bytes.Replace(content, []byte(old), []byte(new), 1), 1, nil
	}
	return bytes.ReplaceAll(content, []byte(old), []byte(new)), n, nil
}

// Entry is a listing row in transport-neutral form.
type Entry struct {
	Name    string
	Path    string
	IsDir   bool
	Size    int64
	ModTime time.Time // truncated to the second, UTC; zero for glob rows
}

// SortLs orders a directory listing: directories first, then by name.
func SortLs(es []Entry) {
	sort.Slice(es, func(i, j int) bool {
		if es[i].IsDir != es[j].IsDir {
			return es[i].IsDir
		}
		return es[i].Name < es[j].Name
	})
}

// SortByPath orders glob rows by path.
func SortByPath(es []Entry) { sort.Slice(es, func(i, j int) bool { return es[i].Path < es[j].Path }) }

// NormalizeGlob turns a user glob into the form MatchGlob expects: a leading "./" or "/" is dropped,
// as is a leading "**/" (upstream 0.2.27), which MatchGlob's any-depth rule already covers.
func NormalizeGlob(pattern string) string {
	p := strings.TrimPrefix(pattern, "./")
	p = strings.TrimLeft(p, "/")
	for strings.HasPrefix(p, "**/") {
		p = strings.TrimPrefix(p, "**/")
	}
	return p
}

// ValidGlob reports whether pattern is well formed.
func ValidGlob(pattern string) bool { return doublestar.ValidatePattern(NormalizeGlob(pattern)) }

// MatchGlob reports whether rel (a slash-separated path relative to the glob root) matches the
// normalized pattern. "**" crosses directories; "*" does not. As with upstream's
// `find -path '*/<pattern>'`, the pattern may match the path's tail at any depth: "*.py" finds
// every .py file, "src/*.go" finds a/src/x.go too.
func MatchGlob(pattern, rel string) bool {
	if pattern == "" {
		return false
	}
	for {
		if ok, _ := doublestar.Match(pattern, rel); ok {
			return true
		}
		i := strings.IndexByte(rel, '/')
		if i < 0 {
			return false
		}
		rel = rel[i+1:]
	}
}

// GlobRoot maps the glob path argument to a directory: "", "." and "/" are the work dir (0.2.27).
func GlobRoot(p, workDir string) string {
	switch p {
	case "", ".", "/":
		return workDir
	}
	return Resolve(p, workDir)
}

// Resolve makes p absolute against workDir and cleans it.
func Resolve(p, workDir string) string {
	if p == "" {
		return workDir
	}
	if !path.IsAbs(p) {
		p = path.Join(workDir, p)
	}
	return path.Clean(p)
}

// Hidden reports whether a file or directory name is hidden (starts with ".").
func Hidden(name string) bool { return strings.HasPrefix(name, ".") && name != "." && name != ".." }

// IncludeMatch reports whether a file's base name matches grep's --include glob (fnmatch on the
// base name); an empty glob matches everything.
func IncludeMatch(glob, base string) bool {
	if glob == "" {
		return true
	}
	ok, _ := path.Match(glob, base)
	return ok
}

// SortGrep orders matches by path, then line number.
func SortGrep[T any](ms []T, key func(T) (string, int)) {
	sort.SliceStable(ms, func(i, j int) bool {
		pi, li := key(ms[i])
		pj, lj := key(ms[j])
		if pi != pj {
			return pi < pj
		}
		return li < lj
	})
}
