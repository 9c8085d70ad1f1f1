package imagebuild

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Entry is one file system object of a layer built in memory.
type Entry struct {
	// Path inside the image, slash-separated; a leading slash is optional ("/bin/sh" or "bin/sh").
	Path string
	// Mode holds the permission bits (including setuid, setgid and sticky) and the type:
	// fs.ModeDir, fs.ModeSymlink, or no type bits for a regular file.
	Mode     fs.FileMode
	UID, GID int
	// Data is a regular file's content, unless Source is set.
	Data []byte
	// Source names a host file whose content becomes the regular file's content.
	Source string
	// Link is a symlink's target.
	Link string
}

// Dir, File and Symlink build entries owned by root.
func Dir(p string, perm fs.FileMode) Entry { return Entry{Path: p, Mode: fs.ModeDir | perm} }

func File(p string, perm fs.FileMode, data []byte) Entry {
	return Entry{Path: p, Mode: perm, Data: data}
}

func Symlink(p, target string) Entry {
	return Entry{Path: p, Mode: fs.ModeSymlink | 0o777, Link: target}
}

// epoch is the modification time of every in-memory entry, so that layers are reproducible.
var epoch = time.Unix(0, 0)

// WriteTar writes entries as a reproducible tar stream: sorted by path, every parent directory
// present (added as root-owned 0755 when missing), modification time 0. A path given twice is an
// error.
func WriteTar(w io.Writer, entries []Entry) error {
	byPath := map[string]Entry{}
	for _, e := range entries {
		p, err := cleanPath(e.Path)
		if err != nil {
			return err
		}
		if _, dup := byPath[p]; dup {
			return fmt.Errorf("layer: %s given twice", p)
		}
		e.Path = p
		byPath[p] = e
	}
	for p := range byPath {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if _, ok := byPath[d]; !ok {
				byPath[d] = Dir(d, 0o755)
			}
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	slices.Sort(paths)

	tw := tar.NewWriter(w)
	for _, p := range paths {
		e := byPath[p]
		hdr := &tar.Header{
			Name:    p,
			Mode:    tarMode(e.Mode),
			Uid:     e.UID,
			Gid:     e.GID,
			ModTime: epoch,
			Format:  tar.FormatPAX,
		}
		var data []byte
		switch {
		case e.Mode.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, p+"/"
		case e.Mode&fs.ModeSymlink != 0:
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.Link
		case e.Mode.IsRegular():
			hdr.Typeflag = tar.TypeReg
			data = e.Data
			if e.Source != "" {
				b, err := os.ReadFile(e.Source)
				if err != nil {
					return fmt.Errorf("layer: %s: %w", p, err)
				}
				data = b
			}
			hdr.Size = int64(len(data))
		default:
			return fmt.Errorf("layer: %s: unsupported mode %v", p, e.Mode)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	return tw.Close()
}

func cleanPath(p string) (string, error) {
	c := path.Clean("/" + p)
	if c == "/" {
		return "", fmt.Errorf("layer: empty path %q", p)
	}
	return c[1:], nil
}

// tarMode converts fs.FileMode permission and special bits to tar's (c_ISUID, c_ISGID, c_ISVTX).
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

// LayerFromEntries builds an uncompressed layer in memory (WriteTar) and wraps it as a v1.Layer.
func LayerFromEntries(entries []Entry) (v1.Layer, error) {
	var buf bytes.Buffer
	if err := WriteTar(&buf, entries); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
}

// WriteDirTar writes the tree under root as a tar stream in lexical order, keeping owners, modes
// and modification times (truncated to seconds) and hard links. Devices, sockets and FIFOs are
// left out. skip, if not nil, is given each slash-separated path relative to root; a skipped
// directory is left out with its contents.
func WriteDirTar(w io.Writer, root string, skip func(rel string) bool) error {
	tw := tar.NewWriter(w)
	type inode struct{ dev, ino uint64 }
	seen := map[inode]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if skip != nil && skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat data", p)
		}
		hdr := &tar.Header{
			Name:    rel,
			Mode:    tarMode(fi.Mode()),
			Uid:     int(st.Uid),
			Gid:     int(st.Gid),
			ModTime: fi.ModTime().Truncate(time.Second),
			Format:  tar.FormatPAX,
		}
		switch m := fi.Mode(); {
		case m.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, rel+"/"
		case m&fs.ModeSymlink != 0:
			if hdr.Linkname, err = os.Readlink(p); err != nil {
				return err
			}
			hdr.Typeflag = tar.TypeSymlink
		case m.IsRegular():
			key := inode{uint64(st.Dev), st.Ino}
			if first, ok := seen[key]; ok && st.Nlink > 1 {
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
				break
			}
			seen[key] = rel
			hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
		default:
			return nil // device, socket or FIFO
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.CopyN(tw, f, hdr.Size); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
