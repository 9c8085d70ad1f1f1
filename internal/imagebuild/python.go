package imagebuild

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// python returns the python image, made from the cached debootstrap root file system.
func (b *Builder) python(ctx context.Context) (Result, error) {
	rootfs := filepath.Join(b.RootfsDir, fmt.Sprintf("python3-%s-%s.tar", b.Suite, pythonRecipe))
	return b.cached("python", Python, key(pythonRecipe, filepath.Base(rootfs)), func() (v1.Image, error) {
		if err := b.pythonRootfs(ctx, rootfs); err != nil {
			return nil, err
		}
		b.Logf("packing %s", Python)
		l, err := tarball.LayerFromFile(rootfs)
		if err != nil {
			return nil, err
		}
		return NewImage(nil, Config{
			Cmd: []string{"python3"},
			Env: []string{DefaultPath, "LANG=C.UTF-8"},
		}, l)
	})
}

// trimmed lists directories whose contents are removed from the root file system: apt caches and
// lists, documentation, logs.
var trimmed = []string{
	"var/cache/apt", "var/lib/apt/lists", "var/cache/debconf", "var/log",
	"usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian",
}

// pythonRootfs runs debootstrap (minbase plus python3) and stores the trimmed root file system as
// the tarball out. It needs root and the Debian mirror.
func (b *Builder) pythonRootfs(ctx context.Context, out string) error {
	if _, err := os.Stat(out); err == nil {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("debootstrap needs root: run as root to build %s", Python)
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return fmt.Errorf("debootstrap not found (apt-get install debootstrap): %w", err)
	}
	if err := os.MkdirAll(b.RootfsDir, 0o755); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(b.RootfsDir, "debootstrap-")
	if err != nil {
		return err
	}
	defer func() {
		// Never remove a tree that still has something mounted in it (debootstrap mounts /proc
		// and /sys of the target while it runs).
		if err := unmountUnder(dir); err != nil {
			b.Logf("leaving %s in place: %v", dir, err)
			return
		}
		os.RemoveAll(dir)
	}()

	b.Logf("debootstrap %s with python3 from %s (about a minute)", b.Suite, b.Mirror)
	logf, err := os.Create(dir + ".log")
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--include=python3",
		b.Suite, dir, b.Mirror)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("debootstrap failed (%w); see %s", err, logf.Name())
	}
	if err := unmountUnder(dir); err != nil {
		return err
	}
	os.Remove(logf.Name())

	for _, t := range trimmed {
		ents, _ := os.ReadDir(filepath.Join(dir, t))
		for _, e := range ents {
			if err := os.RemoveAll(filepath.Join(dir, t, e.Name())); err != nil {
				return err
			}
		}
	}
	// The kubelet provides these; do not ship the build host's.
	for _, f := range []string{"etc/resolv.conf", "etc/hostname"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			return err
		}
	}
	if err := addSandboxUser(dir); err != nil {
		return err
	}

	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	err = WriteDirTar(w, dir, func(rel string) bool {
		// keep the mount points themselves, not what was in them
		for _, d := range []string{"dev", "proc", "sys", "run", "tmp"} {
			if strings.HasPrefix(rel, d+"/") {
				return true
			}
		}
		return false
	})
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, out)
}

// addSandboxUser adds the user and group sandbox (1000:1000, home /workspace) to the root file
// system at dir and creates /workspace owned by it.
func addSandboxUser(dir string) error {
	add := func(file, line string) error {
		p := filepath.Join(dir, "etc", file)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Split(l, ":")
			if len(f) > 2 && (f[0] == "sandbox" || f[2] == "1000") {
				return fmt.Errorf("%s already has %q", p, l)
			}
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			b = append(b, '\n')
		}
		return os.WriteFile(p, append(b, line+"\n"...), 0o644)
	}
	if err := add("passwd", "sandbox:x:1000:1000:sandbox:/workspace:/bin/sh"); err != nil {
		return err
	}
	if err := add("group", "sandbox:x:1000:"); err != nil {
		return err
	}
	ws := filepath.Join(dir, "workspace")
	if err := os.MkdirAll(ws, 0o755); err != nil {
		return err
	}
	return os.Chown(ws, 1000, 1000)
}

// mountsUnder lists the mount points at or under dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var ms []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		m := unescapeMount(f[4])
		if m == dir || strings.HasPrefix(m, dir+"/") {
			ms = append(ms, m)
		}
	}
	slices.Sort(ms)
	slices.Reverse(ms)
	return ms, nil
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountUnder unmounts everything mounted at or under dir and fails if anything is left.
func unmountUnder(dir string) error {
	ms, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if syscall.Unmount(m, 0) != nil {
			syscall.Unmount(m, syscall.MNT_DETACH)
		}
	}
	if ms, err = mountsUnder(dir); err != nil || len(ms) > 0 {
		return fmt.Errorf("still mounted under %s: %v (%v)", dir, ms, err)
	}
	return nil
}
