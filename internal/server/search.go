package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"

	"github.com/podsandbox/podsandbox/internal/fileops"
	"github.com/podsandbox/podsandbox/internal/wire"
)

// binaryProbe is how much of a file is checked for a NUL byte (as GNU grep's heuristic).
const binaryProbe = 8000

// searchRoot resolves a glob or grep root. It returns the path to report results under, the path
// to walk (the symlink target when root is a symlink: like find and grep -r, the root is followed
// but nothing below it) and its FileInfo.
func searchRoot(root string) (report, walk string, st fs.FileInfo, e *apiError) {
	st, err := os.Stat(root)
	if err != nil {
		return "", "", nil, fsError(root, err, true)
	}
	walk = root
	if li, err := os.Lstat(root); err == nil && li.Mode()&fs.ModeSymlink != 0 {
		if real, err := filepath.EvalSymlinks(root); err == nil {
			walk = real
		}
	}
	return root, walk, st, nil
}

// walkFiles calls fn for every regular file below walk (reported under report), skipping
// directories that cannot be read and, unless hidden, hidden files and directories below the root.
// It stops early when ctx ends.
func walkFiles(ctx context.Context, report, walk string, hidden bool, fn func(p, rel, name string)) error {
	return filepath.WalkDir(walk, func(p string, d fs.DirEntry, err error) error {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if p == walk {
			if err != nil {
				return err
			}
			return nil
		}
		if err != nil {
			// An unreadable directory (or an entry gone meanwhile): skip it, keep the rest.
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !hidden && fileops.Hidden(d.Name()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(walk, p)
		if err != nil {
			return nil
		}
		rel = filepath.ToSlash(rel)
		fn(path.Join(report, rel), rel, d.Name())
		return nil
	})
}

// handleGlob is POST /glob: regular files below the root whose root-relative path matches,
// sorted by path. Unreadable directories are skipped; the rest is still returned.
func (s *Server) handleGlob(w http.ResponseWriter, r *http.Request) *apiError {
	var req wire.GlobRequest
	if e := decodeJSON(w, r, jsonBodyLimit, &req); e != nil {
		return e
	}
	if !fileops.ValidGlob(req.Pattern) {
		return errInvalid("invalid glob pattern %q", req.Pattern)
	}
	pattern := fileops.NormalizeGlob(req.Pattern)
	// A root that is missing or not a directory has no matches (as the pods/exec transport's
	// `[ -d root ] || exit 0`), not an error.
	report, walk, st, e := searchRoot(fileops.GlobRoot(req.Path, s.workDir))
	if e != nil && e.body.Code != wire.CodeNotFound {
		return e
	}
	if e != nil || !st.IsDir() {
		writeJSON(w, http.StatusOK, []wire.FileInfo{})
		return nil
	}
	var entries []fileops.Entry
	err := walkFiles(r.Context(), report, walk, true, func(p, rel, name string) {
		if fileops.MatchGlob(pattern, rel) {
			entries = append(entries, fileops.Entry{Name: name, Path: p})
		}
	})
	if err != nil {
		return walkError(report, err)
	}
	fileops.SortByPath(entries)
	rows := make([]wire.FileInfo, len(entries))
	for i, en := range entries {
		rows[i] = wire.FileInfo{Name: en.Name, Path: en.Path}
	}
	writeJSON(w, http.StatusOK, rows)
	return nil
}

func walkError(root string, err error) *apiError {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return errInternal("request ended: %v", err)
	}
	return fsError(root, err, false)
}

// handleGrep is POST /grep: lines matching a Go regexp in the text files below a root (or in one
// file), binary files skipped, hidden ones too unless include_hidden, the include glob matched
// against base names, sorted by path and line. A missing root is not_found.
func (s *Server) handleGrep(w http.ResponseWriter, r *http.Request) *apiError {
	var req wire.GrepRequest
	if e := decodeJSON(w, r, jsonBodyLimit, &req); e != nil {
		return e
	}
	re, err := regexp.Compile(req.Pattern)
	if err != nil {
		return errInvalid("invalid regular expression: %v", err)
	}
	report, walk, st, e := searchRoot(s.resolve(req.Path))
	if e != nil {
		return e
	}
	matches := []wire.GrepMatch{}
	if !st.IsDir() {
		// A file named as the root is searched whatever the include glob (as the pods/exec
		// transport, which greps it directly).
		if st.Mode().IsRegular() {
			matches = grepFile(walk, report, re, matches)
		}
	} else {
		err = walkFiles(r.Context(), report, walk, req.IncludeHidden, func(p, rel, name string) {
			if fileops.IncludeMatch(req.Glob, name) {
				matches = grepFile(path.Join(walk, rel), p, re, matches)
			}
		})
		if err != nil {
			return walkError(report, err)
		}
	}
	fileops.SortGrep(matches, func(m wire.GrepMatch) (string, int) { return m.Path, m.LineNumber })
	writeJSON(w, http.StatusOK, matches)
	return nil
}

// grepFile appends the matching lines of the file at p (reported as report). Unreadable and binary
// files are skipped. Lines end at "\n", which is stripped; they may be of any length.
func grepFile(p, report string, re *regexp.Regexp, out []wire.GrepMatch) []wire.GrepMatch {
	f, err := os.Open(p)
	if err != nil {
		return out
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	if head, _ := br.Peek(binaryProbe); bytes.IndexByte(head, 0) >= 0 {
		return out
	}
	var long []byte
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(line) == 0 && err != nil {
			return out
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		if re.Match(line) {
			out = append(out, wire.GrepMatch{Path: report, LineNumber: n, Line: string(line)})
		}
		if err != nil { // io.EOF or a read error: stop either way
			return out
		}
	}
}
