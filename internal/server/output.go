package server

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/podsandbox/podsandbox/internal/outcap"
	"github.com/podsandbox/podsandbox/internal/wire"
)

// outputFile is the file that keeps a cut command's full output. It is created only when the
// output goes over the limit.
type outputFile struct {
	root string
	path string
	f    *os.File
}

// open creates the file (its directory private to the sandbox user), after removing the oldest
// files past wire.OutputFilesKept-1.
func (o *outputFile) open() (io.Writer, error) {
	if err := os.MkdirAll(o.root, 0o700); err != nil {
		return nil, err
	}
	pruneOutputFiles(o.root, wire.OutputFilesKept-1)
	p := filepath.Join(o.root, wire.OutputFileName(time.Now()))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	o.path, o.f = p, f
	return f, nil
}

// close closes the file and returns its path, or "" when none was made or it is incomplete
// through a write error (it is removed then).
func (o *outputFile) close(r outcap.Result) string {
	if o.f == nil {
		return ""
	}
	err := o.f.Close()
	if r.SpillErr != nil || err != nil {
		_ = os.Remove(o.path)
		return ""
	}
	return o.path
}

// pruneOutputFiles removes the oldest output files in root until at most keep are left.
func pruneOutputFiles(root string, keep int) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "out-") && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	for len(names) > keep {
		_ = os.Remove(filepath.Join(root, names[0]))
		names = names[1:]
	}
}

// wireResult is the wire form of a capture's result.
func wireResult(r outcap.Result, file string) *wire.ExecResult {
	return &wire.ExecResult{
		Output: r.Output, Stdout: r.Stdout, Stderr: r.Stderr,
		Truncated: r.Truncated, StdoutTruncated: r.StdoutTruncated, StderrTruncated: r.StderrTruncated,
		StdoutBytes: r.StdoutBytes, StderrBytes: r.StderrBytes,
		OutputFile: file,
	}
}
