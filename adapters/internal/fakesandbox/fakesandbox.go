// Package fakesandbox is a small in-memory podsandbox.Sandbox for the adapters' tests: files in a
// map, scripted command results, and an optional injected failure. It returns the podsandbox
// typed errors and formats Read like the real sandbox.
package fakesandbox

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/internal/fileops"
)

// Sandbox is the fake. The zero value is not usable; call New.
type Sandbox struct {
	mu    sync.Mutex
	files map[string][]byte // absolute paths under WorkDir
	// Commands maps a command line to its result; other commands succeed with no output.
	Commands map[string]podsandbox.ExecuteResponse
	// Err, when set, is returned by every operation.
	Err error
	// Executed lists the commands run, in order.
	Executed []string
}

// WorkDir is the fake's working directory.
const WorkDir = "/workspace"

var _ podsandbox.Sandbox = (*Sandbox)(nil)

// New returns an empty fake.
func New() *Sandbox {
	return &Sandbox{files: map[string][]byte{}, Commands: map[string]podsandbox.ExecuteResponse{}}
}

// Put creates or replaces a file.
func (s *Sandbox) Put(p, content string) *Sandbox {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[fileops.Resolve(p, WorkDir)] = []byte(content)
	return s
}

// File returns a file's content.
func (s *Sandbox) File(p string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.files[fileops.Resolve(p, WorkDir)]
	return string(b), ok
}

func (s *Sandbox) ID() string                   { return "fake" }
func (s *Sandbox) Start(context.Context) error  { return nil }
func (s *Sandbox) Stop(context.Context) error   { return nil }
func (s *Sandbox) IsAlive(context.Context) bool { return true }
func (s *Sandbox) LastActivity() time.Time      { return time.Time{} }
func (s *Sandbox) Touch()                       {}
func (s *Sandbox) IdleTimeout() time.Duration   { return time.Hour }

func (s *Sandbox) isDir(abs string) bool {
	prefix := strings.TrimSuffix(abs, "/") + "/"
	for p := range s.files {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return abs == WorkDir
}

func (s *Sandbox) file(op, p string) ([]byte, error) {
	if s.Err != nil {
		return nil, s.Err
	}
	abs := fileops.Resolve(p, WorkDir)
	if b, ok := s.files[abs]; ok {
		return b, nil
	}
	if s.isDir(abs) {
		return nil, &podsandbox.PathError{Op: op, Path: abs, Err: podsandbox.ErrIsDirectory}
	}
	return nil, &podsandbox.PathError{Op: op, Path: abs, Err: podsandbox.ErrNotFound}
}

func (s *Sandbox) Execute(_ context.Context, command string, _ ...podsandbox.ExecOption) (*podsandbox.ExecuteResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	s.Executed = append(s.Executed, command)
	r := s.Commands[command]
	return &r, nil
}

func (s *Sandbox) Read(_ context.Context, p string, offset, limit int) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.file("read", p)
	if err != nil {
		return "", err
	}
	out, err := fileops.FormatRead(b, offset, limit)
	var oe *fileops.OffsetError
	if errors.As(err, &oe) {
		return "", &podsandbox.OffsetError{Path: p, Offset: oe.Offset, Lines: oe.Lines}
	}
	return out, err
}

func (s *Sandbox) ReadBytes(_ context.Context, p string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.file("read", p)
	return append([]byte(nil), b...), err
}

func (s *Sandbox) Write(_ context.Context, p string, content []byte) (*podsandbox.WriteResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	abs := fileops.Resolve(p, WorkDir)
	s.files[abs] = append([]byte(nil), content...)
	return &podsandbox.WriteResult{Path: abs, BytesWritten: len(content)}, nil
}

func (s *Sandbox) Edit(_ context.Context, p, old, new string, replaceAll bool) (*podsandbox.EditResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.file("edit", p)
	if err != nil {
		return nil, err
	}
	out, n, err := fileops.ApplyEdit(b, old, new, replaceAll)
	var ce *fileops.CountError
	switch {
	case errors.As(err, &ce):
		return nil, &podsandbox.EditError{Path: p, Old: old, Count: ce.Count}
	case err != nil:
		return nil, fmt.Errorf("%w: %v", podsandbox.ErrInvalidArgument, err)
	}
	abs := fileops.Resolve(p, WorkDir)
	s.files[abs] = out
	return &podsandbox.EditResult{Path: abs, Occurrences: n}, nil
}

func (s *Sandbox) LsInfo(_ context.Context, p string) ([]podsandbox.FileInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	abs := fileops.Resolve(p, WorkDir)
	if !s.isDir(abs) {
		return nil, &podsandbox.PathError{Op: "ls", Path: abs, Err: podsandbox.ErrNotFound}
	}
	seen := map[string]bool{}
	var es []fileops.Entry
	prefix := strings.TrimSuffix(abs, "/") + "/"
	for fp, b := range s.files {
		rest, ok := strings.CutPrefix(fp, prefix)
		if !ok {
			continue
		}
		if dir, _, isDeeper := strings.Cut(rest, "/"); isDeeper {
			if !seen[dir] {
				seen[dir] = true
				es = append(es, fileops.Entry{Name: dir, Path: prefix + dir, IsDir: true})
			}
			continue
		}
		es = append(es, fileops.Entry{Name: rest, Path: fp, Size: int64(len(b))})
	}
	fileops.SortLs(es)
	out := make([]podsandbox.FileInfo, len(es))
	for i, e := range es {
		out[i] = podsandbox.FileInfo{Name: e.Name, Path: e.Path, IsDir: e.IsDir, Size: e.Size}
	}
	return out, nil
}

func (s *Sandbox) GlobInfo(_ context.Context, pattern, p string) ([]podsandbox.FileInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	root := strings.TrimSuffix(fileops.GlobRoot(p, WorkDir), "/") + "/"
	norm := fileops.NormalizeGlob(pattern)
	var out []podsandbox.FileInfo
	for fp := range s.files {
		if rel, ok := strings.CutPrefix(fp, root); ok && fileops.MatchGlob(norm, rel) {
			out = append(out, podsandbox.FileInfo{Name: path.Base(fp), Path: fp})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func (s *Sandbox) GrepRaw(_ context.Context, pattern string, opts podsandbox.GrepOptions) ([]podsandbox.GrepMatch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", podsandbox.ErrInvalidArgument, err)
	}
	root := strings.TrimSuffix(fileops.Resolve(opts.Path, WorkDir), "/") + "/"
	var out []podsandbox.GrepMatch
	for fp, b := range s.files {
		if _, ok := strings.CutPrefix(fp, root); !ok || !fileops.IncludeMatch(opts.Glob, path.Base(fp)) {
			continue
		}
		for i, line := range fileops.SplitLines(b) {
			if re.MatchString(line) {
				out = append(out, podsandbox.GrepMatch{Path: fp, LineNumber: i + 1, Line: line})
			}
		}
	}
	fileops.SortGrep(out, func(m podsandbox.GrepMatch) (string, int) { return m.Path, m.LineNumber })
	return out, nil
}

func (s *Sandbox) Exists(_ context.Context, p string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.files[fileops.Resolve(p, WorkDir)]
	return ok, s.Err
}
