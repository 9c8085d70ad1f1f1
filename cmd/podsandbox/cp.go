package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/podsandbox/podsandbox"
)

// progressMin is the smallest transfer that gets a progress bar (on a terminal only).
const progressMin = 1 << 20

// cpEnd is one side of `cp`: a sandbox file (ID:PATH) or a local one ("-" is stdin or stdout).
type cpEnd struct {
	id   string // the sandbox id; "" for a local path
	path string // sandbox path (relative to the work dir, "" for the work dir) or local path
}

func (e cpEnd) remote() bool { return e.id != "" }
func (e cpEnd) stdio() bool  { return e.id == "" && e.path == "-" }

func (e cpEnd) String() string {
	if e.remote() {
		return e.id + ":" + e.path
	}
	return e.path
}

// parseCpEnd reads one argument of `cp` as kubectl cp does: ID:PATH names a sandbox file unless
// the part before the first colon holds a slash; a path that starts with /, . or ~ is always local,
// so a local name with a colon is written ./a:b.
func parseCpEnd(arg string) (cpEnd, error) {
	switch {
	case arg == "":
		return cpEnd{}, errors.New("an empty path: give a local path, - or ID:PATH")
	case arg == "-", strings.HasPrefix(arg, "/"), strings.HasPrefix(arg, "."), strings.HasPrefix(arg, "~"):
		return cpEnd{path: arg}, nil
	}
	id, p, ok := strings.Cut(arg, ":")
	switch {
	case !ok || strings.Contains(id, "/"):
		return cpEnd{path: arg}, nil
	case id == "":
		return cpEnd{}, fmt.Errorf("%q: no sandbox id before the colon: write ID:PATH, or ./%s for a local file", arg, arg)
	}
	return cpEnd{id: id, path: p}, nil
}

// parseCpArgs parses SRC and DST; exactly one of them must be a sandbox file.
func parseCpArgs(src, dst string) (from, to cpEnd, err error) {
	if from, err = parseCpEnd(src); err != nil {
		return from, to, err
	}
	if to, err = parseCpEnd(dst); err != nil {
		return from, to, err
	}
	switch {
	case from.remote() && to.remote():
		return from, to, errors.New("both sides are sandbox paths: cp copies between a sandbox and this machine; copy through a local file")
	case !from.remote() && !to.remote():
		return from, to, fmt.Errorf("neither %q nor %q is a sandbox path: write one side as ID:PATH (a local name with a colon as ./a:b)", src, dst)
	case from.remote() && (from.path == "" || strings.HasSuffix(from.path, "/")):
		return from, to, fmt.Errorf("%s names a directory: cp copies one file; give ID:PATH of a file", from)
	}
	return from, to, nil
}

// remoteDest returns the sandbox path a file named base goes to when the destination is dst: a
// destination that is empty (the work dir) or ends in a slash is a directory, and gets base.
func remoteDest(dst, base string) (string, bool) {
	if dst == "" || strings.HasSuffix(dst, "/") {
		return dst + base, true
	}
	return dst, false
}

func (c *cli) cpCmd() *cobra.Command {
	var maxBytes int64
	cmd := &cobra.Command{
		Use:   "cp SRC DST",
		Short: "Copy one file between a sandbox (ID:PATH) and this machine, either way; - is stdin or stdout",
		Long: "Copy one file between a sandbox and this machine, byte for byte, as kubectl cp does: one side is ID:PATH\n" +
			"(a relative PATH is in the sandbox's work dir), the other a local path, or - for stdin (as SRC) or stdout (as DST).\n" +
			"A directory as DST (local, or a sandbox path that ends in / or is empty) gets SRC's base name. The file moves whole,\n" +
			"up to --max-file-bytes; file modes are not kept. On a terminal, files of 1 MiB and more show progress on stderr.",
		Example: "  podsandbox cp ./data.csv demo:input/\n  podsandbox cp demo:/tmp/report.pdf .\n" +
			"  tar czf - src | podsandbox cp - demo:src.tgz\n  podsandbox cp demo:out.json - | jq .",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			from, to, err := parseCpArgs(args[0], args[1])
			if err != nil {
				return err
			}
			if maxBytes <= 0 {
				return fmt.Errorf("--max-file-bytes %d: give a positive number of bytes", maxBytes)
			}
			var opts []podsandbox.Option
			if cmd.Flags().Changed("max-file-bytes") {
				opts = append(opts, podsandbox.WithMaxFileBytes(maxBytes))
			}
			if from.remote() {
				return c.download(cmd.Context(), from, to, opts)
			}
			return c.upload(cmd.Context(), from, to, maxBytes, opts)
		},
	}
	cmd.Flags().Int64Var(&maxBytes, "max-file-bytes", podsandbox.DefaultMaxFileBytes,
		"largest file to copy (an HTTP-mode pod's server also refuses files over its own limit, 64 MiB unless set)")
	return cmd
}

// upload copies the local file (or stdin) from to the sandbox file to.
func (c *cli) upload(ctx context.Context, from, to cpEnd, limit int64, opts []podsandbox.Option) error {
	base := ""
	if !from.stdio() {
		base = filepath.Base(from.path)
	}
	dst, intoDir := remoteDest(to.path, base)
	if intoDir && base == "" {
		return fmt.Errorf("%s is a directory and stdin has no name: give the file's path, ID:DIR/NAME", to)
	}
	var data []byte
	if from.stdio() {
		b, err := io.ReadAll(io.LimitReader(c.stdin, limit+1))
		if err != nil {
			return fmt.Errorf("reading stdin: %w", err)
		}
		if int64(len(b)) > limit {
			return tooLarge("stdin", -1, limit)
		}
		data = b
	} else {
		b, err := c.readLocal(from.path, to.id, limit)
		if err != nil {
			return err
		}
		data = b
	}
	sb, err := c.attach(ctx, to.id, opts...)
	if err != nil {
		return err
	}
	defer sb.Stop(context.WithoutCancel(ctx)) //nolint:errcheck // detach only: nothing is deleted
	t0 := time.Now()
	res, err := sb.Write(ctx, dst, data)
	if errors.Is(err, podsandbox.ErrIsDirectory) && !intoDir && base != "" {
		// an existing directory, named without the trailing slash: the file goes into it
		res, err = sb.Write(ctx, path.Join(dst, base), data)
	}
	if errors.Is(err, podsandbox.ErrIsDirectory) {
		return fmt.Errorf("%s:%s %w: give the file's path, %s", to.id, dst, podsandbox.ErrIsDirectory, shq(to.id+":"+path.Join(dst, "NAME")))
	}
	if err != nil {
		return c.cpError(err, to)
	}
	if c.showProgress(int64(len(data))) {
		fmt.Fprintf(c.stderr, "sent %s to %s:%s in %s\n", humanBytes(int64(len(data))), to.id, res.Path, time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

// readLocal reads a local file of at most limit bytes, with a progress bar for a large one; id is
// the sandbox it goes to, for the hint on a directory.
func (c *cli) readLocal(name, id string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, localError("reading", err)
	}
	defer f.Close()
	st, err := f.Stat()
	switch {
	case err != nil:
		return nil, localError("reading", err)
	case st.IsDir():
		return nil, fmt.Errorf("%s is a directory: cp copies one file; archive it: tar czf - %s | podsandbox cp - %s",
			name, shq(name), shq(id+":"+filepath.Base(name)+".tgz"))
	case st.Size() > limit:
		return nil, tooLarge(name, st.Size(), limit)
	}
	var buf bytes.Buffer
	buf.Grow(int(st.Size()))
	var w io.Writer = &buf
	if bar := c.bar(st.Size(), "reading "+filepath.Base(name)); bar != nil {
		defer bar.Finish() //nolint:errcheck // a progress bar on a terminal
		w = io.MultiWriter(&buf, bar)
	}
	if _, err := io.Copy(w, io.LimitReader(f, limit+1)); err != nil {
		return nil, localError("reading", err)
	}
	if int64(buf.Len()) > limit { // it grew since Stat
		return nil, tooLarge(name, int64(buf.Len()), limit)
	}
	return buf.Bytes(), nil
}

// download copies the sandbox file from to the local file (or stdout) to.
func (c *cli) download(ctx context.Context, from, to cpEnd, opts []podsandbox.Option) error {
	dst := to.path
	if !to.stdio() {
		if st, err := os.Stat(dst); err == nil && st.IsDir() {
			dst = filepath.Join(dst, path.Base(from.path))
		} else if strings.HasSuffix(dst, "/") || strings.HasSuffix(dst, string(filepath.Separator)) {
			return fmt.Errorf("%s is not a directory here: create it, or give a file name", dst)
		}
	}
	sb, err := c.attach(ctx, from.id, opts...)
	if err != nil {
		return err
	}
	defer sb.Stop(context.WithoutCancel(ctx)) //nolint:errcheck // detach only: nothing is deleted
	t0 := time.Now()
	data, err := sb.ReadBytes(ctx, from.path)
	if err != nil {
		return c.cpError(err, from)
	}
	n := int64(len(data))
	if to.stdio() {
		_, err := c.stdout.Write(data)
		return err
	}
	if c.showProgress(n) {
		p := from.path
		if !path.IsAbs(p) {
			p = path.Join(sb.WorkDir(), p)
		}
		fmt.Fprintf(c.stderr, "received %s from %s:%s in %s\n", humanBytes(n), from.id, p, time.Since(t0).Round(time.Millisecond))
	}
	return c.writeLocal(dst, data)
}

// writeLocal writes data to the local file name (created with mode 0666 less the umask, or
// truncated), with a progress bar for a large file. The whole file is in memory by now, so a
// failed transfer never leaves a cut destination.
func (c *cli) writeLocal(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
	if err != nil {
		return localError("writing", err)
	}
	var w io.Writer = f
	if bar := c.bar(int64(len(data)), "writing "+filepath.Base(name)); bar != nil {
		defer bar.Finish() //nolint:errcheck // a progress bar on a terminal
		w = io.MultiWriter(f, bar)
	}
	_, err = io.Copy(w, bytes.NewReader(data))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return localError("writing", err)
	}
	return nil
}

// cpError turns a sandbox file error into one line saying what to do.
func (c *cli) cpError(err error, e cpEnd) error {
	p := e.path // the resolved path, when the library says it
	var pe *podsandbox.PathError
	if errors.As(err, &pe) {
		p = pe.Path
	}
	var tl *podsandbox.FileTooLargeError
	switch {
	case errors.As(err, &tl):
		return tooLarge(e.id+":"+tl.Path, tl.Size, tl.Limit)
	case errors.Is(err, podsandbox.ErrNotFound):
		return fmt.Errorf("sandbox %s has no file %s: %w (see what is there with `podsandbox -n %s ls %s %s`)",
			e.id, p, podsandbox.ErrNotFound, c.namespace, shq(e.id), shq(path.Dir(p)))
	case errors.Is(err, podsandbox.ErrIsDirectory):
		return fmt.Errorf("%s:%s %w: cp copies one file; archive it first (podsandbox exec %s -- tar czf %s -C %s %s) and copy the archive",
			e.id, p, podsandbox.ErrIsDirectory, shq(e.id), shq(path.Base(p)+".tgz"), shq(path.Dir(p)), shq(path.Base(p)))
	case errors.Is(err, podsandbox.ErrNotDirectory):
		return fmt.Errorf("%s:%s: a parent of the path is a file: %w", e.id, p, podsandbox.ErrNotDirectory)
	}
	return err
}

// shq quotes s for a shell command line in a hint, when it needs it.
func shq(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:@%+=,-") == "" {
		return s
	}
	return shellJoin([]string{s})
}

// tooLarge says that a file is over the limit, and what to do. size < 0: unknown.
func tooLarge(what string, size, limit int64) error {
	is := "is over"
	if size >= 0 {
		is = "is " + humanBytes(size) + ", over"
	}
	return fmt.Errorf("%w: %s %s the file limit of %s (%d bytes): raise --max-file-bytes (an HTTP-mode pod's server keeps its own limit, 64 MiB unless set), or split the file (split -b 32M) and copy the parts",
		podsandbox.ErrFileTooLarge, what, is, humanBytes(limit), limit)
}

// localError words a local *fs.PathError as "reading ./x: no such file or directory".
func localError(op string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s %s: %w", op, pe.Path, pe.Err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// showProgress reports whether a transfer of n bytes shows progress: n ≥ 1 MiB and stderr is a
// terminal (never into a pipe or a log file).
func (c *cli) showProgress(n int64) bool {
	if n < progressMin {
		return false
	}
	f, ok := c.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// bar returns a byte progress bar on stderr for n bytes, or nil when showProgress says no. Its
// total is known, so it starts no goroutine of its own.
func (c *cli) bar(n int64, desc string) *progressbar.ProgressBar {
	if !c.showProgress(n) {
		return nil
	}
	return progressbar.NewOptions64(n,
		progressbar.OptionSetWriter(c.stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(65*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(c.stderr) }),
	)
}

// humanBytes formats n in IEC units as ls -h does: 812 B, 1.5 KiB, 64 MiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	s := fmt.Sprintf("%.1f", v)
	if v >= 10 || strings.HasSuffix(s, ".0") {
		s = fmt.Sprintf("%.0f", v)
	}
	return s + " " + string("KMGTPE"[exp]) + "iB"
}
