package imagebuild

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestToolsFiles checks the host files of the tools layer: both programs, their interpreter where
// their ELF headers name it, and each library once, in a default library directory.
func TestToolsFiles(t *testing.T) {
	files, err := ToolsFiles(DefaultGrep, DefaultDash)
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(DefaultDash)
	if err != nil {
		t.Fatal(err)
	}
	interp, err := interpreter(f)
	f.Close()
	if err != nil || interp == "" {
		t.Fatalf("dash has no program interpreter: %q, %v", interp, err)
	}
	dirs, err := libDirs(f.Machine)
	if err != nil {
		t.Fatal(err)
	}
	byBase := map[string]HostFile{}
	for _, hf := range files {
		if _, dup := byBase[path.Base(hf.At)]; dup {
			t.Errorf("%s given twice", path.Base(hf.At))
		}
		byBase[path.Base(hf.At)] = hf
		if st, err := os.Lstat(hf.Source); err != nil || !st.Mode().IsRegular() {
			t.Errorf("%s: source %s is not a regular file (%v)", hf.At, hf.Source, err)
		}
	}
	tests := []struct {
		base, at string // at "" means: in one of the default library directories
	}{
		{"grep", "/usr/bin/grep"},
		{"dash", "/bin/dash"},
		{path.Base(interp), interp},
		{"libc.so.6", ""},
		{"libpcre2-8.so.0", ""},
	}
	for _, tt := range tests {
		hf, ok := byBase[tt.base]
		switch {
		case !ok:
			t.Errorf("%s missing from %+v", tt.base, files)
		case tt.at != "" && hf.At != tt.at:
			t.Errorf("%s at %s, want %s", tt.base, hf.At, tt.at)
		case tt.at == "" && !contains(dirs, path.Dir(hf.At)):
			t.Errorf("%s at %s, not in a default library directory %v", tt.base, hf.At, dirs)
		}
	}
	if len(files) != len(tests) {
		t.Errorf("%d files, want %d: %+v", len(files), len(tests), files)
	}

	if _, err := ToolsFiles("/bin/busybox", DefaultDash); err == nil {
		t.Error("busybox accepted as GNU grep")
	}
	if deps, err := ELFDeps("/bin/busybox"); err != nil || len(deps) != 0 {
		t.Errorf("a static program needs nothing, got %+v, %v", deps, err)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// TestToolsRun unpacks the busybox layer with the tools layer over it into a directory and runs
// the commands pydantic-ai-backend's shell fallbacks send, chrooted there: they must find GNU grep
// through /bin/sh and PATH with nothing else of the host.
func TestToolsRun(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	if err := isStatic("/bin/busybox"); err != nil {
		t.Fatalf("no static busybox: %v (apt-get install busybox-static; make test installs it before the unit tests)", err)
	}
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	files, err := ToolsFiles(DefaultGrep, DefaultDash)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, layer := range [][]Entry{BusyboxEntries("/bin/busybox", strings.Fields(string(out))), ToolsEntries(files)} {
		var buf bytes.Buffer
		if err := WriteTar(&buf, layer); err != nil {
			t.Fatal(err)
		}
		untar(t, &buf, root)
	}
	ws := filepath.Join(root, "workspace")
	for p, c := range map[string]string{
		"a.txt":          "needle one\nhay\n",
		"sub/b.md":       "hay\nneedle two\n",
		".hidden/c.txt":  "needle hidden\n",
		".dot.txt":       "needle dotfile\n",
		"my dir/d e.txt": "it's a needle\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(ws, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ws, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, script, want string
	}{
		{"sh is dash, grep is GNU grep", `readlink /bin/sh; command -v grep; grep --version | head -n1 | cut -d' ' -f1-3`,
			"dash\n/usr/bin/grep\ngrep (GNU grep)\n"},
		{"grep_raw hiding hidden files (G1)", `grep -rn --exclude='.*' --exclude-dir='.*' 'needle' '/workspace' | sort`,
			"/workspace/a.txt:1:needle one\n/workspace/my dir/d e.txt:1:it's a needle\n/workspace/sub/b.md:2:needle two\n"},
		{"grep_raw with a glob (G2)", `grep -rn --exclude='.*' --exclude-dir='.*' --include='*.md' -e needle sub`,
			"sub/b.md:2:needle two\n"},
		// GNU grep applies --exclude-dir to the directory operand too, and "." matches ".*": the
		// Python client's default path finds nothing, as it does on any Debian image.
		{"grep_raw's default path", `grep -rn --exclude='.*' --exclude-dir='.*' -e needle '.'; echo "rc=$?"`, "rc=1\n"},
		{"grep_raw with hidden files", `grep -rn -e 'needle [dh]' . | sort`,
			"./.dot.txt:1:needle dotfile\n./.hidden/c.txt:1:needle hidden\n"},
		{"no match exits 1", `grep -rn -e absent .; echo "rc=$?"`, "rc=1\n"},
		{"perl regex", `echo 'ab12' | grep -oP '\d+'`, "12\n"},
		{"egrep and fgrep", `echo 'a|b' | egrep 'x|b' && echo 'a.b' | fgrep 'a.b'`, "a|b\na.b\n"},
		{"exists", `test -f a.txt && echo yes; test -f sub && echo no; true`, "yes\n"},
		{"busybox applets and ash stay", `ls a.txt; ash -c 'echo ash'`, "a.txt\nash\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("/bin/sh", "-c", tt.script)
			cmd.Dir = "/workspace"
			cmd.Env = []string{DefaultPath}
			cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
			out, err := cmd.CombinedOutput()
			if err != nil || string(out) != tt.want {
				t.Fatalf("%s:\ngot  %q (%v)\nwant %q", tt.script, out, err, tt.want)
			}
		})
	}
}

// untar unpacks a WriteTar stream (directories, regular files, symlinks) under dir; a later entry
// replaces an earlier one, as an image layer does.
func untar(t *testing.T, r io.Reader, dir string) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, os.FileMode(h.Mode).Perm())
		case tar.TypeSymlink:
			os.Remove(p)
			err = os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			os.Remove(p)
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(p, b, os.FileMode(h.Mode).Perm())
			}
		default:
			t.Fatalf("%s: unexpected type %c", h.Name, h.Typeflag)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
