// Package imagebuild builds the local cluster's container images without Docker or a registry:
// each is a docker-archive tarball (what `ctr images import` accepts) made with go-containerregistry
// and cached under a directory, keyed by everything that goes into it, so that fresh checkouts on
// the same machine reuse it.
//
// The images (refs below) are all for linux on the host's architecture:
//
//   - Pause: the static Go pause process from hack/pause (the pod sandbox image).
//   - Busybox: Debian's busybox-static with /bin/<applet> links, /tmp 1777, and users root,
//     sandbox (1000:1000, home /workspace) and nobody.
//   - Python: a Debian slim root file system with python3 and GNU coreutils made with debootstrap;
//     the stand-in for python:3.12-slim.
//   - NoShell: the pause binary as /sleep and nothing else (no /bin/sh).
//   - SandboxServer: Busybox, then a layer with the host's GNU grep and dash (as /bin/sh) with the
//     libraries they load (see ToolsFiles for why), then the in-pod server from
//     ./cmd/sandbox-server at /usr/local/bin/sandbox-server, running as 1000 in /workspace. It is
//     rebuilt on every run (go build is cached), so it always matches the checkout's source.
package imagebuild

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Image references. internal/e2e repeats them for the tests (a unit test keeps them equal).
const (
	Pause         = "podsandbox.local/pause:1"
	Busybox       = "podsandbox.local/busybox:1"
	Python        = "podsandbox.local/python:3-slim"
	NoShell       = "podsandbox.local/noshell:1"
	SandboxServer = "podsandbox.local/sandbox-server:dev"
)

// Recipe versions: bump one when its image's content changes in a way its key does not see.
const (
	pauseRecipe   = "1"
	busyboxRecipe = "1"
	pythonRecipe  = "1"
	serverRecipe  = "2"
)

// Names lists the image names Build accepts, in build order.
var Names = []string{"pause", "noshell", "busybox", "python", "sandbox-server"}

// Builder builds the images. The zero value is not usable: Dir and Root are required.
type Builder struct {
	// Dir holds the image tarballs, <name>-<key>.tar.
	Dir string
	// RootfsDir holds debootstrap root file systems as tarballs. Default: Dir/../rootfs.
	RootfsDir string
	// Root is the module root; hack/pause and ServerPkg are built from there.
	Root string
	// Busybox is the static busybox binary to package. Default: /bin/busybox (busybox-static).
	Busybox string
	// Grep and Dash are the GNU grep and dash of the server image (see ToolsFiles). Defaults:
	// DefaultGrep, DefaultDash.
	Grep, Dash string
	// Suite and Mirror are given to debootstrap. Defaults: bookworm, http://deb.debian.org/debian.
	Suite, Mirror string
	// ServerPkg is the Go package of the in-pod server, relative to Root. Default:
	// ./cmd/sandbox-server; when that default does not exist the image is skipped.
	ServerPkg string
	// Logf reports progress. Default: discard.
	Logf func(format string, args ...any)
}

// Result describes one image tarball.
type Result struct {
	Name, Ref string
	// Path is the docker-archive tarball.
	Path string
	// ID is the image ID (config digest), as the CRI reports it.
	ID string
	// Size is the tarball's size in bytes.
	Size int64
	// Cached is true when the tarball already existed.
	Cached bool
}

// ErrNoServer is returned (wrapped) for the sandbox-server image when ./cmd/sandbox-server
// does not exist yet.
var ErrNoServer = errors.New("no in-pod server package")

func (b *Builder) defaults() {
	if b.RootfsDir == "" {
		b.RootfsDir = filepath.Join(filepath.Dir(b.Dir), "rootfs")
	}
	if b.Busybox == "" {
		b.Busybox = "/bin/busybox"
	}
	if b.Grep == "" {
		b.Grep = DefaultGrep
	}
	if b.Dash == "" {
		b.Dash = DefaultDash
	}
	if b.Suite == "" {
		b.Suite = "bookworm"
	}
	if b.Mirror == "" {
		b.Mirror = "http://deb.debian.org/debian"
	}
	if b.Logf == nil {
		b.Logf = func(string, ...any) {}
	}
}

// Build builds (or finds in the cache) the named images, all of Names when names is empty, and
// returns them in the order of Names. The sandbox-server image is skipped, with a message, when
// the default server package does not exist.
func (b *Builder) Build(ctx context.Context, names ...string) ([]Result, error) {
	if b.Dir == "" || b.Root == "" {
		return nil, errors.New("imagebuild: Builder.Dir and Builder.Root are required")
	}
	b.defaults()
	if len(names) == 0 {
		names = Names
	}
	for _, n := range names {
		if !slices.Contains(Names, n) {
			return nil, fmt.Errorf("imagebuild: unknown image %q (known: %s)", n, strings.Join(Names, ", "))
		}
	}
	if err := os.MkdirAll(b.Dir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "imagebuild-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	var out []Result
	for _, n := range Names {
		if !slices.Contains(names, n) {
			continue
		}
		var r Result
		switch n {
		case "pause":
			r, err = b.pause(ctx, tmp, n, Pause, "/pause")
		case "noshell":
			r, err = b.pause(ctx, tmp, n, NoShell, "/sleep")
		case "busybox":
			r, err = b.busybox()
		case "python":
			r, err = b.python(ctx)
		case "sandbox-server":
			r, err = b.server(ctx, tmp)
			if errors.Is(err, ErrNoServer) {
				b.Logf("skipping %s: %v", SandboxServer, err)
				continue
			}
		}
		if err != nil {
			return out, fmt.Errorf("image %s: %w", n, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// cached returns the tarball <name>-<key>.tar, building it with build when it is missing; older
// tarballs of the same name are removed.
func (b *Builder) cached(name, ref, key string, build func() (v1.Image, error)) (Result, error) {
	r := Result{Name: name, Ref: ref, Path: filepath.Join(b.Dir, name+"-"+key+".tar"), Cached: true}
	if _, err := os.Stat(r.Path); err != nil {
		r.Cached = false
		img, err := build()
		if err != nil {
			return r, err
		}
		if err := WriteTarball(r.Path, ref, img); err != nil {
			return r, err
		}
		old, _ := filepath.Glob(filepath.Join(b.Dir, name+"-"+strings.Repeat("?", len(key))+".tar"))
		for _, o := range old {
			if o != r.Path {
				os.Remove(o)
			}
		}
	}
	fi, err := os.Stat(r.Path)
	if err != nil {
		return r, err
	}
	r.Size = fi.Size()
	r.ID, err = ImageID(r.Path)
	return r, err
}

// key hashes its parts into a short cache key.
func key(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func fileHash(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// goBuild builds a static binary of pkg (relative to b.Root) at out.
func (b *Builder) goBuild(ctx context.Context, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = b.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOFLAGS=-buildvcs=false")
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, o)
	}
	return nil
}

// pause builds the pause binary (once per Build) into an image with it as ref's entrypoint.
func (b *Builder) pause(ctx context.Context, tmp, name, ref, at string) (Result, error) {
	src := filepath.Join(b.Root, "hack", "pause")
	files, _ := filepath.Glob(filepath.Join(src, "*.go"))
	if len(files) == 0 {
		return Result{}, fmt.Errorf("no Go files in %s", src)
	}
	parts := []string{pauseRecipe, name, ref, at, runtime.Version()}
	for _, f := range files {
		h, err := fileHash(f)
		if err != nil {
			return Result{}, err
		}
		parts = append(parts, filepath.Base(f), h)
	}
	return b.cached(name, ref, key(parts...), func() (v1.Image, error) {
		bin := filepath.Join(tmp, "pause")
		if _, err := os.Stat(bin); err != nil {
			b.Logf("building hack/pause")
			if err := b.goBuild(ctx, "./hack/pause", bin); err != nil {
				return nil, err
			}
		}
		l, err := LayerFromEntries([]Entry{{Path: at, Mode: 0o755, Source: bin}})
		if err != nil {
			return nil, err
		}
		return NewImage(nil, Config{Entrypoint: []string{at}}, l)
	})
}

// BusyboxEntries is the busybox image's file system: bb (a static busybox) as /bin/busybox with a
// /bin/<applet> link for each applet, /usr/bin/env, /tmp (1777), /workspace (owned by 1000),
// /www/health ("ok", for httpd probes), and /etc/passwd and /etc/group with root, sandbox
// (1000:1000, home /workspace) and nobody.
func BusyboxEntries(bb string, applets []string) []Entry {
	e := []Entry{
		{Path: "/bin/busybox", Mode: 0o755, Source: bb},
		Symlink("/usr/bin/env", "/bin/env"),
		Dir("/tmp", 0o777|fs.ModeSticky),
		Dir("/root", 0o700),
		{Path: "/workspace", Mode: fs.ModeDir | 0o755, UID: 1000, GID: 1000},
		Dir("/proc", 0o555), Dir("/sys", 0o555), Dir("/dev", 0o755),
		Dir("/etc", 0o755), Dir("/usr/local/bin", 0o755),
		File("/etc/passwd", 0o644, []byte(passwd)),
		File("/etc/group", 0o644, []byte(group)),
		File("/www/health", 0o644, []byte("ok\n")),
	}
	seen := map[string]bool{"busybox": true}
	for _, a := range applets {
		a = filepath.Base(strings.TrimSpace(a))
		if a == "" || a == "." || a == "/" || seen[a] {
			continue
		}
		seen[a] = true
		e = append(e, Symlink("/bin/"+a, "busybox"))
	}
	return e
}

const (
	passwd = "root:x:0:0:root:/root:/bin/sh\n" +
		"sandbox:x:1000:1000:sandbox:/workspace:/bin/sh\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	group = "root:x:0:\nsandbox:x:1000:\nnogroup:x:65534:\n"
)

// isStatic reports whether the ELF file at p has no program interpreter.
func isStatic(p string) error {
	f, err := elf.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked (install busybox-static, not busybox)", p)
		}
	}
	return nil
}

func (b *Builder) busyboxKey() (string, error) {
	h, err := fileHash(b.Busybox)
	if err != nil {
		return "", fmt.Errorf("%w (apt-get install busybox-static)", err)
	}
	return key(busyboxRecipe, h, passwd, group), nil
}

func (b *Builder) busybox() (Result, error) {
	k, err := b.busyboxKey()
	if err != nil {
		return Result{}, err
	}
	return b.cached("busybox", Busybox, k, func() (v1.Image, error) {
		if err := isStatic(b.Busybox); err != nil {
			return nil, err
		}
		out, err := exec.Command(b.Busybox, "--list").Output()
		if err != nil {
			return nil, fmt.Errorf("%s --list: %w", b.Busybox, err)
		}
		l, err := LayerFromEntries(BusyboxEntries(b.Busybox, strings.Fields(string(out))))
		if err != nil {
			return nil, err
		}
		return NewImage(nil, Config{Cmd: []string{"/bin/sh"}}, l)
	})
}

// server builds ServerPkg and puts it, with the tools layer under it, on top of the busybox image.
func (b *Builder) server(ctx context.Context, tmp string) (Result, error) {
	pkg := b.ServerPkg
	if pkg == "" {
		pkg = "./cmd/sandbox-server"
		if _, err := os.Stat(filepath.Join(b.Root, pkg)); err != nil {
			return Result{}, fmt.Errorf("%w: %s does not exist yet", ErrNoServer, pkg)
		}
	}
	base, err := b.busybox()
	if err != nil {
		return Result{}, err
	}
	bin := filepath.Join(tmp, "sandbox-server")
	if err := b.goBuild(ctx, pkg, bin); err != nil {
		return Result{}, err
	}
	h, err := fileHash(bin)
	if err != nil {
		return Result{}, err
	}
	tools, err := ToolsFiles(b.Grep, b.Dash)
	if err != nil {
		return Result{}, err
	}
	parts := []string{serverRecipe, base.ID, h, egrepScript, fgrepScript}
	for _, f := range tools {
		th, err := fileHash(f.Source)
		if err != nil {
			return Result{}, err
		}
		parts = append(parts, f.At, th)
	}
	const at = "/usr/local/bin/sandbox-server"
	return b.cached("sandbox-server", SandboxServer, key(parts...), func() (v1.Image, error) {
		bimg, err := tarball.ImageFromPath(base.Path, nil)
		if err != nil {
			return nil, err
		}
		tl, err := LayerFromEntries(ToolsEntries(tools))
		if err != nil {
			return nil, err
		}
		l, err := LayerFromEntries([]Entry{{Path: at, Mode: 0o755, Source: bin}})
		if err != nil {
			return nil, err
		}
		return NewImage(bimg, Config{Entrypoint: []string{at}, User: "1000", WorkingDir: "/workspace"}, tl, l)
	})
}
