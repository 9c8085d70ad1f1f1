package toolset_test

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

// fakeSandbox is an in-memory podsandbox.Sandbox over a map of files. It returns the same typed
// errors as the real sandbox (*PathError with the sentinels, *OffsetError, *FileTooLargeError,
// *EditError) and formats Read with the same fileops code.
type fakeSandbox struct {
	mu       sync.Mutex
	workDir  string
	files    map[string][]byte // absolute, clean paths
	dirs     map[string]bool
	maxBytes int64

	// fail, when set, is consulted first by every file operation and Execute with the operation's
	// name ("Read", "ReadBytes", "Write", "Edit", "LsInfo", "GlobInfo", "GrepRaw", "Execute") and
	// its path (the command for Execute); a non-nil error is returned as is.
	fail func(op, p string) error
	// exec answers Execute; nil means every command succeeds with no output.
	exec func(command string, cfg podsandbox.ExecConfig) (*podsandbox.ExecuteResponse, error)

	calls    []string // "Op path" for each call, in order
	lastExec podsandbox.ExecConfig
	touched  time.Time
}

var _ podsandbox.Sandbox = (*fakeSandbox)(nil)

func newFake() *fakeSandbox {
	return &fakeSandbox{
		workDir:  "/workspace",
		files:    map[string][]byte{},
		dirs:     map[string]bool{"/": true, "/workspace": true},
		maxBytes: podsandbox.DefaultMaxFileBytes,
	}
}

// put creates a file (and its parent directories).
func (f *fakeSandbox) put(p, content string) *fakeSandbox {
	f.mu.Lock()
	defer f.mu.Unlock()
	abs := f.resolve(p)
	f.files[abs] = []byte(content)
	f.mkdirs(path.Dir(abs))
	return f
}

// mkdir creates a directory and its parents.
func (f *fakeSandbox) mkdir(p string) *fakeSandbox {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mkdirs(f.resolve(p))
	return f
}

func (f *fakeSandbox) content(p string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.files[f.resolve(p)]
	return string(b), ok
}

func (f *fakeSandbox) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeSandbox) mkdirs(abs string) {
	for d := abs; ; d = path.Dir(d) {
		f.dirs[d] = true
		if d == "/" {
			return
		}
	}
}

func (f *fakeSandbox) resolve(p string) string { return fileops.Resolve(p, f.workDir) }

// begin records the call and returns the injected failure, if any. f.mu must be held.
func (f *fakeSandbox) begin(op, p string) error {
	f.calls = append(f.calls, op+" "+p)
	f.touched = time.Now()
	if f.fail != nil {
		return f.fail(op, p)
	}
	return nil
}

func (f *fakeSandbox) ID() string                   { return "fake" }
func (f *fakeSandbox) Start(context.Context) error  { return nil }
func (f *fakeSandbox) Stop(context.Context) error   { return nil }
func (f *fakeSandbox) IsAlive(context.Context) bool { return true }
func (f *fakeSandbox) LastActivity() time.Time      { f.mu.Lock(); defer f.mu.Unlock(); return f.touched }
func (f *fakeSandbox) Touch()                       { f.mu.Lock(); f.touched = time.Now(); f.mu.Unlock() }
func (f *fakeSandbox) IdleTimeout() time.Duration   { return time.Hour }
func (f *fakeSandbox) Exists(_ context.Context, p string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("Exists", p); err != nil {
		return false, err
	}
	_, ok := f.files[f.resolve(p)]
	return ok, nil
}

func (f *fakeSandbox) Execute(ctx context.Context, command string, opts ...podsandbox.ExecOption) (*podsandbox.ExecuteResponse, error) {
	cfg := podsandbox.ResolveExecOptions(opts...)
	f.mu.Lock()
	err := f.begin("Execute", command)
	f.lastExec = cfg
	exec := f.exec
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if exec == nil {
		return &podsandbox.ExecuteResponse{}, nil
	}
	return exec(command, cfg)
}

// readable returns the file's bytes or the error the real sandbox gives. f.mu must be held.
func (f *fakeSandbox) readable(op, p string) ([]byte, error) {
	abs := f.resolve(p)
	if f.dirs[abs] {
		return nil, &podsandbox.PathError{Op: op, Path: abs, Err: podsandbox.ErrIsDirectory}
	}
	b, ok := f.files[abs]
	if !ok {
		return nil, &podsandbox.PathError{Op: op, Path: abs, Err: podsandbox.ErrNotFound}
	}
	if int64(len(b)) > f.maxBytes {
		return nil, &podsandbox.PathError{Op: op, Path: abs, Err: &podsandbox.FileTooLargeError{Path: abs, Size: int64(len(b)), Limit: f.maxBytes}}
	}
	return b, nil
}

func (f *fakeSandbox) Read(_ context.Context, p string, offset, limit int) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("Read", p); err != nil {
		return "", err
	}
	b, err := f.readable("read", p)
	if err != nil {
		return "", err
	}
	out, err := fileops.FormatRead(b, offset, limit)
	var oe *fileops.OffsetError
	if errors.As(err, &oe) {
		return "", &podsandbox.OffsetError{Path: f.resolve(p), Offset: oe.Offset, Lines: oe.Lines}
	}
	return out, err
}

func (f *fakeSandbox) ReadBytes(_ context.Context, p string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("ReadBytes", p); err != nil {
		return nil, err
	}
	b, err := f.readable("read", p)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), b...), nil
}

// writeLocked stores content at p with the real sandbox's checks. f.mu must be held.
func (f *fakeSandbox) writeLocked(op, p string, content []byte) error {
	abs := f.resolve(p)
	if f.dirs[abs] {
		return &podsandbox.PathError{Op: op, Path: abs, Err: podsandbox.ErrIsDirectory}
	}
	for d := path.Dir(abs); d != "/"; d = path.Dir(d) {
		if _, isFile := f.files[d]; isFile {
			return &podsandbox.PathError{Op: op, Path: d, Err: podsandbox.ErrNotDirectory}
		}
	}
	if int64(len(content)) > f.maxBytes {
		return &podsandbox.PathError{Op: op, Path: abs, Err: &podsandbox.FileTooLargeError{Path: abs, Size: int64(len(content)), Limit: f.maxBytes}}
	}
	f.files[abs] = append([]byte(nil), content...)
	f.mkdirs(path.Dir(abs))
	return nil
}

func (f *fakeSandbox) Write(_ context.Context, p string, content []byte) (*podsandbox.WriteResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("Write", p); err != nil {
		return nil, err
	}
	if err := f.writeLocked("write", p, content); err != nil {
		return nil, err
	}
	return &podsandbox.WriteResult{Path: f.resolve(p), BytesWritten: len(content)}, nil
}

func (f *fakeSandbox) Edit(_ context.Context, p, old, new string, replaceAll bool) (*podsandbox.EditResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("Edit", p); err != nil {
		return nil, err
	}
	b, err := f.readable("edit", p)
	if err != nil {
		return nil, err
	}
	out, n, err := fileops.ApplyEdit(b, old, new, replaceAll)
	var ce *fileops.CountError
	switch {
	case errors.As(err, &ce):
		return nil, &podsandbox.EditError{Path: f.resolve(p), Old: old, Count: ce.Count}
	case err != nil:
		return nil, fmt.Errorf("%w: %v", podsandbox.ErrInvalidArgument, err)
	}
	if err := f.writeLocked("edit", p, out); err != nil {
		return nil, err
	}
	return &podsandbox.EditResult{Path: f.resolve(p), Occurrences: n}, nil
}

func (f *fakeSandbox) LsInfo(_ context.Context, p string) ([]podsandbox.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("LsInfo", p); err != nil {
		return nil, err
	}
	abs := f.resolve(p)
	if _, isFile := f.files[abs]; isFile {
		return nil, &podsandbox.PathError{Op: "ls", Path: abs, Err: podsandbox.ErrNotDirectory}
	}
	if !f.dirs[abs] {
		return nil, &podsandbox.PathError{Op: "ls", Path: abs, Err: podsandbox.ErrNotFound}
	}
	var es []fileops.Entry
	for d := range f.dirs {
		if d != abs && path.Dir(d) == abs {
			es = append(es, fileops.Entry{Name: path.Base(d), Path: d, IsDir: true})
		}
	}
	for fp, b := range f.files {
		if path.Dir(fp) == abs {
			es = append(es, fileops.Entry{Name: path.Base(fp), Path: fp, Size: int64(len(b))})
		}
	}
	fileops.SortLs(es)
	out := make([]podsandbox.FileInfo, len(es))
	for i, e := range es {
		out[i] = podsandbox.FileInfo{Name: e.Name, Path: e.Path, IsDir: e.IsDir, Size: e.Size}
	}
	return out, nil
}

func (f *fakeSandbox) GlobInfo(_ context.Context, pattern, p string) ([]podsandbox.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("GlobInfo", p); err != nil {
		return nil, err
	}
	if !fileops.ValidGlob(pattern) {
		return nil, fmt.Errorf("%w: bad glob pattern %q", podsandbox.ErrInvalidArgument, pattern)
	}
	root := fileops.GlobRoot(p, f.workDir)
	if !f.dirs[root] {
		return nil, &podsandbox.PathError{Op: "glob", Path: root, Err: podsandbox.ErrNotFound}
	}
	norm := fileops.NormalizeGlob(pattern)
	var out []podsandbox.FileInfo
	for fp := range f.files {
		rel, ok := under(root, fp)
		if ok && fileops.MatchGlob(norm, rel) {
			out = append(out, podsandbox.FileInfo{Name: path.Base(fp), Path: fp})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func (f *fakeSandbox) GrepRaw(_ context.Context, pattern string, opts podsandbox.GrepOptions) ([]podsandbox.GrepMatch, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("GrepRaw", opts.Path); err != nil {
		return nil, err
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("%w: bad regular expression: %v", podsandbox.ErrInvalidArgument, err)
	}
	root := f.resolve(opts.Path)
	var files []string
	if _, isFile := f.files[root]; isFile {
		files = []string{root}
	} else if f.dirs[root] {
		for fp := range f.files {
			rel, ok := under(root, fp)
			if !ok || !fileops.IncludeMatch(opts.Glob, path.Base(fp)) {
				continue
			}
			if !opts.IncludeHidden && hiddenPath(rel) {
				continue
			}
			files = append(files, fp)
		}
	} else {
		return nil, &podsandbox.PathError{Op: "grep", Path: root, Err: podsandbox.ErrNotFound}
	}
	var out []podsandbox.GrepMatch
	for _, fp := range files {
		for i, line := range fileops.SplitLines(f.files[fp]) {
			if re.MatchString(line) {
				out = append(out, podsandbox.GrepMatch{Path: fp, LineNumber: i + 1, Line: line})
			}
		}
	}
	fileops.SortGrep(out, func(m podsandbox.GrepMatch) (string, int) { return m.Path, m.LineNumber })
	return out, nil
}

// under returns fp relative to root when fp is below it.
func under(root, fp string) (string, bool) {
	prefix := strings.TrimSuffix(root, "/") + "/"
	if !strings.HasPrefix(fp, prefix) {
		return "", false
	}
	return fp[len(prefix):], true
}

func hiddenPath(rel string) bool {
	for _, part := range strings.Split(rel, "/") {
		if fileops.Hidden(part) {
			return true
		}
	}
	return false
}
