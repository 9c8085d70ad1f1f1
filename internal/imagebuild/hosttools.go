package imagebuild

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// The server image's tools come from the host's Debian packages: grep, dash, and the libc6 and
// libpcre2-8-0 libraries they load.
//
// pydantic-ai-backend's Python client runs some file operations as shell commands through /exec:
// grep_raw is `grep -rn --exclude='.*' --exclude-dir='.*' [--include=GLOB] [-e] PATTERN PATH`,
// and BusyBox grep knows none of those long options. GNU grep alone is not enough: the shell of
// Debian's busybox-static (FEATURE_SH_STANDALONE) runs its own applet for every command name it
// has one for, whatever PATH says, so `grep` would still be BusyBox's. /bin/sh is therefore dash,
// Debian's /bin/sh, which looks commands up in PATH as any POSIX shell does; every other command
// is still a BusyBox applet in /bin (ash included, as /bin/ash).

// The host programs of the server image's tools layer: Builder.Grep and Builder.Dash default to
// them.
const (
	DefaultGrep = "/bin/grep" // Debian package grep
	DefaultDash = "/bin/dash" // Debian package dash
)

// egrepScript and fgrepScript stand in for BusyBox's egrep and fgrep applets, so that every grep
// spelling is GNU grep.
const (
	egrepScript = "#!/bin/sh\nexec /usr/bin/grep -E \"$@\"\n"
	fgrepScript = "#!/bin/sh\nexec /usr/bin/grep -F \"$@\"\n"
)

// HostFile is a host file copied into an image.
type HostFile struct {
	// At is the path in the image.
	At string
	// Source is the host file (symlinks resolved).
	Source string
}

// ToolsFiles returns the host files of the server image's tools layer: GNU grep at /usr/bin/grep,
// dash at /bin/dash, and the program interpreter and shared libraries they need.
func ToolsFiles(grep, dash string) ([]HostFile, error) {
	if err := checkGNUGrep(grep); err != nil {
		return nil, err
	}
	files := []HostFile{}
	seen := map[string]bool{}
	for _, p := range []struct{ bin, at string }{{grep, "/usr/bin/grep"}, {dash, "/bin/dash"}} {
		src, err := filepath.EvalSymlinks(p.bin)
		if err != nil {
			return nil, fmt.Errorf("%w (apt-get install grep dash)", err)
		}
		files = append(files, HostFile{At: p.at, Source: src})
		deps, err := ELFDeps(src)
		if err != nil {
			return nil, err
		}
		for _, d := range deps {
			if !seen[d.At] {
				seen[d.At] = true
				files = append(files, d)
			}
		}
	}
	return files, nil
}

// ToolsEntries turns files (from ToolsFiles) into layer entries, with /bin/sh pointing to dash and
// /bin/grep, /bin/egrep and /bin/fgrep running GNU grep (they replace BusyBox's links).
func ToolsEntries(files []HostFile) []Entry {
	e := []Entry{
		Symlink("/bin/sh", "dash"),
		Symlink("/bin/grep", "/usr/bin/grep"),
		File("/bin/egrep", 0o755, []byte(egrepScript)),
		File("/bin/fgrep", 0o755, []byte(fgrepScript)),
	}
	for _, f := range files {
		e = append(e, Entry{Path: f.At, Mode: 0o755, Source: f.Source})
	}
	return e
}

// checkGNUGrep makes sure p is GNU grep, not another BusyBox.
func checkGNUGrep(p string) error {
	out, err := exec.Command(p, "--version").Output()
	if err != nil {
		return fmt.Errorf("%s --version: %w (apt-get install grep)", p, err)
	}
	if first, _, _ := strings.Cut(string(out), "\n"); !strings.Contains(first, "GNU grep") {
		return fmt.Errorf("%s is not GNU grep (%q); install Debian's grep package", p, first)
	}
	return nil
}

// multiarch maps ELF machines to Debian's multiarch triplets (the library directories).
var multiarch = map[elf.Machine]string{
	elf.EM_X86_64:  "x86_64-linux-gnu",
	elf.EM_AARCH64: "aarch64-linux-gnu",
	elf.EM_386:     "i386-linux-gnu",
	elf.EM_ARM:     "arm-linux-gnueabihf",
	elf.EM_PPC64:   "powerpc64le-linux-gnu",
	elf.EM_S390:    "s390x-linux-gnu",
	elf.EM_RISCV:   "riscv64-linux-gnu",
}

// libDirs returns the directories the dynamic loader of machine m searches by default, in order.
func libDirs(m elf.Machine) ([]string, error) {
	t, ok := multiarch[m]
	if !ok {
		return nil, fmt.Errorf("no multiarch directory known for ELF machine %v", m)
	}
	return []string{"/lib/" + t, "/usr/lib/" + t, "/lib64", "/usr/lib64", "/lib", "/usr/lib"}, nil
}

// ELFDeps returns what the dynamically linked ELF program bin needs in an image to run: its program
// interpreter at the path bin names, and every shared library it loads, directly or through
// another library, in the first default library directory that has it on this host (so where the
// loader looks for it without an ld.so.cache). A static program needs nothing.
func ELFDeps(bin string) ([]HostFile, error) {
	f, err := elf.Open(bin)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	interp, err := interpreter(f)
	if err != nil || interp == "" {
		return nil, err
	}
	dirs, err := libDirs(f.Machine)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", bin, err)
	}
	src, err := filepath.EvalSymlinks(interp)
	if err != nil {
		return nil, fmt.Errorf("%s: program interpreter: %w", bin, err)
	}
	out := []HostFile{{At: interp, Source: src}}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", bin, err)
	}
	// The interpreter is also a library under its own name (libc needs ld-linux-*.so.*); the
	// loader matches that by soname, so it needs no second copy.
	seen := map[string]bool{path.Base(interp): true}
	for len(needed) > 0 {
		name := needed[0]
		needed = needed[1:]
		if seen[name] {
			continue
		}
		seen[name] = true
		at, src, err := findLib(name, dirs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", bin, err)
		}
		out = append(out, HostFile{At: at, Source: src})
		more, err := importedLibraries(src)
		if err != nil {
			return nil, err
		}
		needed = append(needed, more...)
	}
	return out, nil
}

// interpreter returns the PT_INTERP path of f, "" for a static program.
func interpreter(f *elf.File) (string, error) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return "", fmt.Errorf("reading PT_INTERP: %w", err)
		}
		return string(bytes.TrimRight(b, "\x00")), nil
	}
	return "", nil
}

func importedLibraries(p string) ([]string, error) {
	f, err := elf.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ImportedLibraries()
}

// findLib returns the path of library name in the first of dirs that has it, and the host file
// behind it.
func findLib(name string, dirs []string) (at, src string, err error) {
	if strings.Contains(name, "/") {
		return "", "", fmt.Errorf("library %q: only bare sonames are supported", name)
	}
	for _, d := range dirs {
		p := path.Join(d, name)
		if src, err := filepath.EvalSymlinks(p); err == nil {
			return p, src, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", "", err
		}
	}
	return "", "", fmt.Errorf("library %s not found in %s", name, strings.Join(dirs, ", "))
}
