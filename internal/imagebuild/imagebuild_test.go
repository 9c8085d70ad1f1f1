package imagebuild

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/podsandbox/podsandbox/internal/e2e"
)

type hdr struct {
	name, link string
	typ        byte
	mode       int64
	uid        int
	data       string
}

func readTar(t *testing.T, r io.Reader) []hdr {
	t.Helper()
	var out []hdr
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out = append(out, hdr{h.Name, h.Linkname, h.Typeflag, h.Mode, h.Uid, string(b)})
	}
}

func find(hs []hdr, name string) (hdr, bool) {
	for _, h := range hs {
		if h.name == name {
			return h, true
		}
	}
	return hdr{}, false
}

func TestRefsMatchE2E(t *testing.T) {
	for got, want := range map[string]string{
		Pause: e2e.ImagePause, Busybox: e2e.ImageBusybox, Python: e2e.ImagePython,
		NoShell: e2e.ImageNoShell, SandboxServer: e2e.ImageServer,
	} {
		if got != want {
			t.Errorf("imagebuild builds %s but internal/e2e expects %s", got, want)
		}
	}
}

func TestWriteTar(t *testing.T) {
	entries := []Entry{
		File("/usr/bin/b", 0o755, []byte("bee")),
		Symlink("/bin/sh", "busybox"),
		{Path: "home/u", Mode: fs.ModeDir | 0o700, UID: 1000, GID: 1000},
		Dir("/tmp", 0o777|fs.ModeSticky),
	}
	var a, b bytes.Buffer
	if err := WriteTar(&a, entries); err != nil {
		t.Fatal(err)
	}
	slices.Reverse(entries)
	if err := WriteTar(&b, entries); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("WriteTar depends on the order of its entries")
	}
	hs := readTar(t, &a)
	var names []string
	for _, h := range hs {
		names = append(names, h.name)
	}
	want := []string{"bin/", "bin/sh", "home/", "home/u/", "tmp/", "usr/", "usr/bin/", "usr/bin/b"}
	if !slices.Equal(names, want) {
		t.Errorf("entries %q, want %q (sorted, parents added)", names, want)
	}
	checks := map[string]hdr{
		"usr/":      {typ: tar.TypeDir, mode: 0o755},
		"usr/bin/b": {typ: tar.TypeReg, mode: 0o755, data: "bee"},
		"bin/sh":    {typ: tar.TypeSymlink, mode: 0o777, link: "busybox"},
		"home/u/":   {typ: tar.TypeDir, mode: 0o700, uid: 1000},
		"tmp/":      {typ: tar.TypeDir, mode: 0o1777},
	}
	for name, w := range checks {
		h, _ := find(hs, name)
		if h.typ != w.typ || h.mode != w.mode || h.uid != w.uid || h.data != w.data || h.link != w.link {
			t.Errorf("%s: got %+v, want %+v", name, h, w)
		}
	}
	if err := WriteTar(io.Discard, []Entry{Dir("/a", 0o755), File("a/", 0o644, nil)}); err == nil {
		t.Error("WriteTar accepted a path given twice")
	}
}

func TestWriteDirTar(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "dev", "pts"), 0o755))
	must(os.WriteFile(filepath.Join(root, "etc", "a"), []byte("A"), 0o640))
	must(os.Link(filepath.Join(root, "etc", "a"), filepath.Join(root, "etc", "b")))
	must(os.Symlink("a", filepath.Join(root, "etc", "link")))
	must(os.WriteFile(filepath.Join(root, "dev", "null"), nil, 0o644))

	var buf bytes.Buffer
	must(WriteDirTar(&buf, root, func(rel string) bool { return strings.HasPrefix(rel, "dev/") }))
	hs := readTar(t, &buf)
	var names []string
	for _, h := range hs {
		names = append(names, h.name)
	}
	want := []string{"dev/", "etc/", "etc/a", "etc/b", "etc/link"}
	if !slices.Equal(names, want) {
		t.Fatalf("entries %q, want %q", names, want)
	}
	if h, _ := find(hs, "etc/a"); h.typ != tar.TypeReg || h.mode != 0o640 || h.data != "A" {
		t.Errorf("etc/a: %+v", h)
	}
	if h, _ := find(hs, "etc/b"); h.typ != tar.TypeLink || h.link != "etc/a" {
		t.Errorf("etc/b should be a hard link to etc/a: %+v", h)
	}
	if h, _ := find(hs, "etc/link"); h.typ != tar.TypeSymlink || h.link != "a" {
		t.Errorf("etc/link: %+v", h)
	}
}

func TestBusyboxEntries(t *testing.T) {
	var buf bytes.Buffer
	bb := filepath.Join(t.TempDir(), "busybox")
	if err := os.WriteFile(bb, []byte("BB"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteTar(&buf, BusyboxEntries(bb, []string{"sh", "/usr/bin/awk", "busybox", "sh"})); err != nil {
		t.Fatal(err)
	}
	hs := readTar(t, &buf)
	for name, w := range map[string]hdr{
		"bin/busybox": {typ: tar.TypeReg, mode: 0o755, data: "BB"},
		"bin/sh":      {typ: tar.TypeSymlink, mode: 0o777, link: "busybox"},
		"bin/awk":     {typ: tar.TypeSymlink, mode: 0o777, link: "busybox"},
		"tmp/":        {typ: tar.TypeDir, mode: 0o1777},
		"workspace/":  {typ: tar.TypeDir, mode: 0o755, uid: 1000},
	} {
		h, ok := find(hs, name)
		if !ok || h.typ != w.typ || h.mode != w.mode || h.uid != w.uid || h.data != w.data || h.link != w.link {
			t.Errorf("%s: got %+v (present %t), want %+v", name, h, ok, w)
		}
	}
	pw, _ := find(hs, "etc/passwd")
	for _, line := range []string{"root:x:0:0:", "sandbox:x:1000:1000:sandbox:/workspace:/bin/sh", "nobody:x:65534:"} {
		if !strings.Contains(pw.data, line) {
			t.Errorf("/etc/passwd lacks %q:\n%s", line, pw.data)
		}
	}
	if gr, _ := find(hs, "etc/group"); !strings.Contains(gr.data, "sandbox:x:1000:") {
		t.Errorf("/etc/group lacks sandbox:\n%s", gr.data)
	}
}

// TestBuild builds every image but python (debootstrap) into a temporary directory, with a fake
// busybox, the host's GNU grep and dash, and hack/pause standing in for the in-pod server, and
// builds again from the cache.
func TestBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Go binaries")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	fake := filepath.Join(tmp, "busybox")
	cmd := exec.Command("go", "build", "-o", fake, "./internal/imagebuild/testdata/fakebusybox")
	cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the fake busybox: %v\n%s", err, out)
	}
	b := &Builder{Dir: filepath.Join(tmp, "images"), Root: root, Busybox: fake, ServerPkg: "./hack/pause"}
	names := []string{"pause", "noshell", "busybox", "sandbox-server"}
	first, err := b.Build(context.Background(), names...)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != len(names) {
		t.Fatalf("got %d results, want %d", len(first), len(names))
	}
	want := map[string]struct {
		ref, user, wd string
		entry         []string
		layers        int
	}{
		"pause":          {Pause, "", "/", []string{"/pause"}, 1},
		"noshell":        {NoShell, "", "/", []string{"/sleep"}, 1},
		"busybox":        {Busybox, "", "/", nil, 1},
		"sandbox-server": {SandboxServer, "1000", "/workspace", []string{"/usr/local/bin/sandbox-server"}, 3},
	}
	for _, r := range first {
		w := want[r.Name]
		if r.Cached || r.Ref != w.ref || !strings.HasPrefix(r.ID, "sha256:") || r.Size == 0 {
			t.Errorf("%s: unexpected result %+v", r.Name, r)
		}
		img, err := tarball.ImageFromPath(r.Path, nil)
		if err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		c := cf.Config
		if c.User != w.user || c.WorkingDir != w.wd || !slices.Equal(c.Entrypoint, w.entry) || !slices.Contains(c.Env, DefaultPath) || cf.OS != "linux" {
			t.Errorf("%s: config %+v", r.Name, cf)
		}
		layers, _ := img.Layers()
		if len(layers) != w.layers {
			t.Errorf("%s: %d layers, want %d", r.Name, len(layers), w.layers)
		}
		if r.Name == "noshell" {
			rc, err := layers[0].Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			hs := readTar(t, rc)
			rc.Close()
			if len(hs) != 1 || hs[0].name != "sleep" || hs[0].typ != tar.TypeReg {
				t.Errorf("noshell must hold only /sleep, has %+v", hs)
			}
		}
	}

	again, err := b.Build(context.Background(), names...)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range again {
		if !r.Cached || r.ID != first[i].ID || r.Path != first[i].Path {
			t.Errorf("%s: second build not from the cache or different: %+v vs %+v", r.Name, r, first[i])
		}
	}
	if _, err := b.Build(context.Background(), "nope"); err == nil {
		t.Error("Build accepted an unknown image name")
	}
}

func TestAddSandboxUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to 1000 needs root")
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/bash"), 0o644)
	os.WriteFile(filepath.Join(dir, "etc", "group"), []byte("root:x:0:\n"), 0o644)
	if err := addSandboxUser(dir); err != nil {
		t.Fatal(err)
	}
	pw, _ := os.ReadFile(filepath.Join(dir, "etc", "passwd"))
	if string(pw) != "root:x:0:0:root:/root:/bin/bash\nsandbox:x:1000:1000:sandbox:/workspace:/bin/sh\n" {
		t.Errorf("passwd:\n%s", pw)
	}
	if err := addSandboxUser(dir); err == nil {
		t.Error("adding the user twice should fail")
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/a\040b\011c`); got != "/a b\tc" {
		t.Errorf("got %q", got)
	}
}
