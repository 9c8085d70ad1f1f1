package toolset

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/podsandbox/podsandbox"
)

// fatalSentinels are sandbox failures no tool call can fix: the host has to replace the sandbox.
var fatalSentinels = []error{
	podsandbox.ErrNotStarted,
	podsandbox.ErrStopped,
	podsandbox.ErrSandboxGone,
	podsandbox.ErrUnauthorized,
	podsandbox.ErrStartup,
}

// fatal returns the Go error for a failure that has no result for the model (see Call), or nil.
func fatal(ctx context.Context, tool string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(err, cerr) {
			return fmt.Errorf("toolset: %s: %w", tool, err)
		}
		return fmt.Errorf("toolset: %s: %w: %w", tool, cerr, err)
	}
	for _, s := range fatalSentinels {
		if errors.Is(err, s) {
			return fmt.Errorf("toolset: %s: %w", tool, err)
		}
	}
	return nil
}

// failure turns a sandbox error about path p into the tool's "Error: ..." result, or into a Go
// error when it is fatal.
func failure(ctx context.Context, tool, p string, err error) (string, error) {
	if ferr := fatal(ctx, tool, err); ferr != nil {
		return "", ferr
	}
	return "Error: " + describe(p, err), nil
}

// describe words a sandbox error as upstream does, without the "Error: " prefix.
func describe(p string, err error) string {
	var (
		offsetErr *podsandbox.OffsetError
		editErr   *podsandbox.EditError
		largeErr  *podsandbox.FileTooLargeError
		pathErr   *podsandbox.PathError
	)
	switch {
	case errors.As(err, &offsetErr):
		return fmt.Sprintf("Offset %d exceeds file length (%d lines)", offsetErr.Offset, offsetErr.Lines)
	case errors.As(err, &editErr):
		return editErr.Error() // upstream's wording
	case errors.As(err, &largeErr):
		if largeErr.Size < 0 { // size unknown
			return fmt.Sprintf("File '%s' is too large (limit %d bytes)", p, largeErr.Limit)
		}
		return fmt.Sprintf("File '%s' is too large (%d bytes, limit %d bytes)", p, largeErr.Size, largeErr.Limit)
	case errors.Is(err, podsandbox.ErrNotFound):
		return fmt.Sprintf("File '%s' not found", p)
	case errors.Is(err, podsandbox.ErrIsDirectory):
		return fmt.Sprintf("'%s' is a directory", p)
	case errors.Is(err, podsandbox.ErrNotDirectory):
		if errors.As(err, &pathErr) && pathErr.Path != "" {
			return fmt.Sprintf("'%s' is not a directory", pathErr.Path)
		}
		return fmt.Sprintf("'%s' is not a directory", p)
	}
	return err.Error()
}

func (t *Toolset) approved(tool string) bool { return t.byName[tool].RequiresApproval }

func staleMessage(p string) string {
	return fmt.Sprintf("Error: '%s' changed since you last read it. Read it again before editing so your change applies to the current contents.", p)
}

func (t *Toolset) ls(ctx context.Context, a args) (string, error) {
	p, err := a.stringOr("path", ".")
	if err != nil {
		return "", err
	}
	entries, err := t.sb.LsInfo(ctx, p)
	if err != nil {
		if ferr := fatal(ctx, ToolLs, err); ferr != nil {
			return "", ferr
		}
		if !errors.Is(err, podsandbox.ErrNotFound) && !errors.Is(err, podsandbox.ErrNotDirectory) {
			return "Error: " + describe(p, err), nil
		}
		entries = nil
	}
	var b strings.Builder
	n := 0
	for _, e := range entries {
		if t.hidden(e.Path, OpLs) {
			continue
		}
		if n == 0 {
			fmt.Fprintf(&b, "Contents of %s:", p)
		}
		n++
		if e.IsDir {
			fmt.Fprintf(&b, "\n  %s/", e.Name)
		} else {
			fmt.Fprintf(&b, "\n  %s (%d bytes)", e.Name, e.Size)
		}
	}
	if n == 0 {
		return fmt.Sprintf("Directory '%s' is empty or does not exist", p), nil
	}
	return b.String(), nil
}

// readArgs parses the arguments read_file takes in both edit formats.
func readArgs(a args) (p string, offset, limit int, err error) {
	if p, err = a.requiredString("path"); err != nil {
		return "", 0, 0, err
	}
	if offset, err = a.intOr("offset", 0); err != nil {
		return "", 0, 0, err
	}
	if limit, err = a.intOr("limit", defaultReadLimit); err != nil {
		return "", 0, 0, err
	}
	return p, offset, limit, nil
}

// readFile returns Sandbox.Read's text. It also fetches the file's bytes, first, to fingerprint
// what the model is shown: a change between the two makes the next edit refuse as stale rather
// than go through unnoticed.
func (t *Toolset) readFile(ctx context.Context, a args) (string, error) {
	p, offset, limit, err := readArgs(a)
	if err != nil {
		return "", err
	}
	if msg := t.refusal(OpRead, p, t.approved(ToolReadFile)); msg != "" {
		return "Error: " + msg, nil
	}
	if rb, ok := t.sb.(podsandbox.TextBytesReader); ok {
		// One fetch: the text shown and the fingerprint come from the same bytes.
		text, data, err := rb.ReadWithBytes(ctx, p, offset, limit)
		if err != nil {
			return failure(ctx, ToolReadFile, p, err)
		}
		t.remember(p, data)
		return text, nil
	}
	data, bytesErr := t.sb.ReadBytes(ctx, p)
	if bytesErr != nil {
		if ferr := fatal(ctx, ToolReadFile, bytesErr); ferr != nil {
			return "", ferr
		}
	}
	text, err := t.sb.Read(ctx, p, offset, limit)
	if err != nil {
		return failure(ctx, ToolReadFile, p, err)
	}
	if bytesErr == nil {
		t.remember(p, data)
	} else {
		t.forget(p)
	}
	return text, nil
}

// readHashline renders the file in hashline format from its bytes.
func (t *Toolset) readHashline(ctx context.Context, a args) (string, error) {
	p, offset, limit, err := readArgs(a)
	if err != nil {
		return "", err
	}
	if msg := t.refusal(OpRead, p, t.approved(ToolReadFile)); msg != "" {
		return "Error: " + msg, nil
	}
	data, err := t.sb.ReadBytes(ctx, p)
	if err != nil {
		return failure(ctx, ToolReadFile, p, err)
	}
	out := FormatHashline(decodeUTF8(data), offset, limit)
	if !strings.HasPrefix(out, "Error: ") {
		t.remember(p, data)
	}
	return out, nil
}

func (t *Toolset) writeFile(ctx context.Context, a args) (string, error) {
	p, err := a.requiredString("path")
	if err != nil {
		return "", err
	}
	content, err := a.requiredString("content")
	if err != nil {
		return "", err
	}
	if msg := t.refusal(OpWrite, p, t.approved(ToolWriteFile)); msg != "" {
		return "Error: " + msg, nil
	}
	unlock, err := t.lock(ctx, p)
	if err != nil {
		return "", fatal(ctx, ToolWriteFile, err)
	}
	defer unlock()
	if _, err := t.sb.Write(ctx, p, []byte(content)); err != nil {
		t.forget(p)
		return failure(ctx, ToolWriteFile, p, err)
	}
	t.remember(p, []byte(content))
	return fmt.Sprintf("Wrote %d lines to %s", countLines(content), p), nil
}

func (t *Toolset) editFile(ctx context.Context, a args) (string, error) {
	p, err := a.requiredString("path")
	if err != nil {
		return "", err
	}
	oldS, err := a.requiredString("old_string")
	if err != nil {
		return "", err
	}
	newS, err := a.requiredString("new_string")
	if err != nil {
		return "", err
	}
	replaceAll, err := a.boolOr("replace_all", false)
	if err != nil {
		return "", err
	}
	if msg := t.refusal(OpEdit, p, t.approved(ToolEditFile)); msg != "" {
		return "Error: " + msg, nil
	}
	if oldS == "" {
		return "Error: old_string must not be empty", nil
	}
	unlock, err := t.lock(ctx, p)
	if err != nil {
		return "", fatal(ctx, ToolEditFile, err)
	}
	defer unlock()

	// The staleness guard: only a file the model has read or written is checked; a file it never
	// saw is left to the edit's own match check.
	var before []byte
	if fp, ok := t.fingerprint(p); ok {
		cur, err := t.sb.ReadBytes(ctx, p)
		switch {
		case err != nil:
			if ferr := fatal(ctx, ToolEditFile, err); ferr != nil {
				return "", ferr
			}
			// Let the edit report the problem (a file deleted since the read: not found).
		case sha256.Sum256(cur) != fp:
			return staleMessage(p), nil
		default:
			before = cur
		}
	}
	res, err := t.sb.Edit(ctx, p, oldS, newS, replaceAll)
	if err != nil {
		return failure(ctx, ToolEditFile, p, err)
	}
	if before != nil {
		n := 1
		if replaceAll {
			n = -1
		}
		t.remember(p, bytes.Replace(before, []byte(oldS), []byte(newS), n))
	} else {
		t.forget(p)
	}
	return fmt.Sprintf("Edited %s: replaced %d occurrence(s)", p, res.Occurrences), nil
}

func (t *Toolset) hashlineEdit(ctx context.Context, a args) (string, error) {
	p, err := a.requiredString("path")
	if err != nil {
		return "", err
	}
	var e HashlineEdit
	if e.StartLine, err = a.requiredInt("start_line"); err != nil {
		return "", err
	}
	if e.StartHash, err = a.requiredString("start_hash"); err != nil {
		return "", err
	}
	if e.NewContent, err = a.requiredString("new_content"); err != nil {
		return "", err
	}
	if e.EndLine, err = a.optionalInt("end_line"); err != nil {
		return "", err
	}
	if e.EndHash, err = a.optionalString("end_hash"); err != nil {
		return "", err
	}
	if e.InsertAfter, err = a.boolOr("insert_after", false); err != nil {
		return "", err
	}
	if msg := t.refusal(OpEdit, p, t.approved(ToolHashlineEdit)); msg != "" {
		return "Error: " + msg, nil
	}
	unlock, err := t.lock(ctx, p)
	if err != nil {
		return "", fatal(ctx, ToolHashlineEdit, err)
	}
	defer unlock()

	data, err := t.sb.ReadBytes(ctx, p)
	if err != nil {
		return failure(ctx, ToolHashlineEdit, p, err)
	}
	if fp, ok := t.fingerprint(p); ok && sha256.Sum256(data) != fp {
		return staleMessage(p), nil
	}
	if !utf8.Valid(data) {
		// Writing the decoded text back would replace the invalid bytes with U+FFFD.
		return fmt.Sprintf("Error: '%s' is not UTF-8 text; hashline_edit would corrupt it. Use write_file or execute instead.", p), nil
	}
	newText, summary, msg := ApplyHashline(string(data), e)
	if msg != "" {
		return "Error: " + msg, nil
	}
	if _, err := t.sb.Write(ctx, p, []byte(newText)); err != nil {
		t.forget(p)
		return failure(ctx, ToolHashlineEdit, p, err)
	}
	t.remember(p, []byte(newText))
	return fmt.Sprintf("Edited %s: %s", p, summary), nil
}

func (t *Toolset) glob(ctx context.Context, a args) (string, error) {
	pattern, err := a.requiredString("pattern")
	if err != nil {
		return "", err
	}
	p, err := a.stringOr("path", ".")
	if err != nil {
		return "", err
	}
	entries, err := t.sb.GlobInfo(ctx, pattern, p)
	if err != nil {
		if ferr := fatal(ctx, ToolGlob, err); ferr != nil {
			return "", ferr
		}
		if !errors.Is(err, podsandbox.ErrNotFound) && !errors.Is(err, podsandbox.ErrNotDirectory) {
			return "Error: " + describe(p, err), nil
		}
		entries = nil
	}
	var paths []string
	for _, e := range entries {
		if !t.hidden(e.Path, OpGlob) {
			paths = append(paths, e.Path)
		}
	}
	if len(paths) == 0 {
		return fmt.Sprintf("No files matching '%s' in %s", pattern, p), nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Found %d file(s) matching '%s':", len(paths), pattern)
	for _, s := range paths[:min(len(paths), globListCap)] {
		b.WriteString("\n  " + s)
	}
	if len(paths) > globListCap {
		fmt.Fprintf(&b, "\n  ... and %d more", len(paths)-globListCap)
	}
	return b.String(), nil
}

func (t *Toolset) grep(ctx context.Context, a args) (string, error) {
	pattern, err := a.requiredString("pattern")
	if err != nil {
		return "", err
	}
	p, err := a.optionalString("path")
	if err != nil {
		return "", err
	}
	g, err := a.optionalString("glob_pattern")
	if err != nil {
		return "", err
	}
	mode, err := a.enumOr("output_mode", modeFiles, modeContent, modeFiles, modeCount)
	if err != nil {
		return "", err
	}
	ignoreHidden, err := a.boolOr("ignore_hidden", t.cfg.defaultIgnoreHidden)
	if err != nil {
		return "", err
	}
	opts := podsandbox.GrepOptions{IncludeHidden: !ignoreHidden}
	if p != nil {
		opts.Path = *p
	}
	if g != nil {
		opts.Glob = *g
	}
	found, err := t.sb.GrepRaw(ctx, pattern, opts)
	if err != nil {
		if ferr := fatal(ctx, ToolGrep, err); ferr != nil {
			return "", ferr
		}
		if errors.Is(err, podsandbox.ErrNotFound) {
			return fmt.Sprintf("Error: Path '%s' not found", opts.Path), nil
		}
		return "Error: " + describe(opts.Path, err), nil
	}
	matches := found[:0:0]
	for _, m := range found {
		if !t.hidden(m.Path, OpGrep, OpRead) {
			matches = append(matches, m)
		}
	}
	if len(matches) == 0 {
		return fmt.Sprintf("No matches for '%s'", pattern), nil
	}
	var b strings.Builder
	switch mode {
	case modeCount:
		return fmt.Sprintf("Found %d match(es) for '%s'", len(matches), pattern), nil
	case modeFiles:
		seen := map[string]bool{}
		var files []string
		for _, m := range matches {
			if !seen[m.Path] {
				seen[m.Path] = true
				files = append(files, m.Path)
			}
		}
		sort.Strings(files)
		fmt.Fprintf(&b, "Files containing '%s':", pattern)
		for _, f := range files[:min(len(files), grepListCap)] {
			b.WriteString("\n  " + f)
		}
		if len(files) > grepListCap {
			fmt.Fprintf(&b, "\n  ... and %d more files", len(files)-grepListCap)
		}
	default:
		fmt.Fprintf(&b, "Matches for '%s':", pattern)
		for _, m := range matches[:min(len(matches), grepListCap)] {
			fmt.Fprintf(&b, "\n  %s:%d: %s", m.Path, m.LineNumber, truncateRunes(m.Line, grepLineCap))
		}
		if len(matches) > grepListCap {
			fmt.Fprintf(&b, "\n  ... and %d more matches", len(matches)-grepListCap)
		}
	}
	return b.String(), nil
}

func (t *Toolset) execute(ctx context.Context, a args) (string, error) {
	command, err := a.requiredString("command")
	if err != nil {
		return "", err
	}
	timeout := float64(defaultExecuteTimeout)
	if _, present := a.m["timeout"]; present {
		// An explicit null leaves the sandbox's own default (podsandbox.DefaultExecTimeout).
		v, err := a.optionalNumber("timeout")
		if err != nil {
			return "", err
		}
		if v == nil {
			timeout = 0
		} else if timeout = *v; timeout <= 0 {
			return "Error: timeout must be a positive number of seconds", nil
		}
	}
	if msg := t.commandRefusal(command, t.approved(ToolExecute)); msg != "" {
		return "Error: " + msg, nil
	}
	var opts []podsandbox.ExecOption
	if timeout > 0 {
		d := time.Duration(math.MaxInt64)
		if timeout < float64(math.MaxInt64)/float64(time.Second) {
			d = time.Duration(timeout * float64(time.Second))
		}
		opts = append(opts, podsandbox.WithTimeout(d))
	}
	resp, err := t.sb.Execute(ctx, command, opts...)
	if err != nil {
		return failure(ctx, ToolExecute, "", err)
	}
	if resp.TimedOut {
		return strings.TrimRight("Error: Command timed out\n"+resp.Output, "\n"), nil
	}
	out := resp.Output
	if resp.Truncated {
		out += "\n\n... (output truncated)"
		if resp.OutputFile != "" {
			out += fmt.Sprintf("\nThe full output (%d bytes) is in %s: use %s or %s on it for the part you need.",
				resp.StdoutBytes+resp.StderrBytes, resp.OutputFile, ToolReadFile, ToolGrep)
		}
	}
	if resp.ExitCode != 0 {
		return fmt.Sprintf("Command failed (exit code %d):\n%s", resp.ExitCode, out), nil
	}
	return out, nil
}
