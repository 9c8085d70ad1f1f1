package server

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/podsandbox/podsandbox/internal/fileops"
	"github.com/podsandbox/podsandbox/internal/wire"
)

func (s *Server) resolve(p string) string { return fileops.Resolve(p, s.workDir) }

// openRead opens p for reading: it must be a regular file (or a character device) no larger than
// the file limit. O_NONBLOCK keeps a FIFO from blocking the open; it is refused right after.
func (s *Server) openRead(p string) (*os.File, fs.FileInfo, *apiError) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fsError(p, err, true)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, nil, fsError(p, err, true)
	}
	switch m := st.Mode(); {
	case m.IsDir():
		_ = f.Close()
		return nil, nil, errIsDir(p)
	case !m.IsRegular() && m&fs.ModeCharDevice == 0:
		_ = f.Close()
		return nil, nil, errInvalid("%s: not a regular file", p)
	}
	if st.Size() > s.maxFileBytes {
		_ = f.Close()
		return nil, nil, errTooLarge(p, st.Size(), s.maxFileBytes)
	}
	return f, st, nil
}

// readFile reads all of p, refusing files over the limit (also those whose stat size is 0 or
// stale, such as /proc files, by reading at most limit+1 bytes).
func (s *Server) readFile(p string) ([]byte, fs.FileInfo, *apiError) {
	f, st, e := s.openRead(p)
	if e != nil {
		return nil, nil, e
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, s.maxFileBytes+1))
	if err != nil {
		return nil, nil, fsError(p, err, false)
	}
	if int64(len(data)) > s.maxFileBytes {
		return nil, nil, errTooLarge(p, max(st.Size(), int64(len(data))), s.maxFileBytes)
	}
	return data, st, nil
}

// handleRead is POST /read: numbered lines (fileops.FormatRead), or the raw content for the
// request the Python client's read_bytes sends (see wire.ReadRawLimit).
func (s *Server) handleRead(w http.ResponseWriter, r *http.Request) *apiError {
	var req wire.ReadRequest
	if e := decodeJSON(w, r, jsonBodyLimit, &req); e != nil {
		return e
	}
	p := s.resolve(req.Path)
	data, _, e := s.readFile(p)
	if e != nil {
		return e
	}
	if rawRead(req) {
		// encoding/json would turn invalid UTF-8 into U+FFFD, and the client would then write
		// that back on its next edit: refuse instead, which it reads as "no content".
		if !utf8.Valid(data) {
			return errInvalid("%s is not UTF-8 text, which is all the raw form of %s can carry (use %s)",
				p, wire.RouteRead, wire.RouteReadBytes)
		}
		writeJSON(w, http.StatusOK, wire.ReadResponse{Content: string(data)})
		return nil
	}
	content, err := fileops.FormatRead(data, req.Offset, req.Limit)
	if err != nil {
		var oe *fileops.OffsetError
		if errors.As(err, &oe) {
			e := newError(http.StatusBadRequest, wire.CodeOffset, "%s", oe.Error())
			e.body.Lines = oe.Lines
			return e
		}
		return errInternal("%v", err)
	}
	writeJSON(w, http.StatusOK, wire.ReadResponse{Content: content})
	return nil
}

// rawRead reports whether req is the Python client's whole-file request (wire.ReadRawLimit).
func rawRead(req wire.ReadRequest) bool {
	return req.Offset == 0 && req.Limit == wire.ReadRawLimit
}

// handleReadBytes is POST /read_bytes: the whole file as the raw body, with Content-Length. A
// regular file is streamed; if it shrinks meanwhile the response is cut short (and so detectably
// broken), if it grows only the first Content-Length bytes are sent.
func (s *Server) handleReadBytes(w http.ResponseWriter, r *http.Request) *apiError {
	var req wire.PathRequest
	if e := decodeJSON(w, r, jsonBodyLimit, &req); e != nil {
		return e
	}
	p := s.resolve(req.Path)
	f, st, e := s.openRead(p)
	if e != nil {
		return e
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	if st.Mode().IsRegular() && st.Size() > 0 {
		h.Set("Content-Length", strconv.FormatInt(st.Size(), 10))
		w.WriteHeader(http.StatusOK)
		_, _ = io.CopyN(w, f, st.Size())
		return nil
	}
	// Size unknown (empty file, /proc file, device): read it, within the limit.
	f.Close()
	data, _, e := s.readFile(p)
	if e != nil {
		return e
	}
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
	return nil
}

// handleWrite is POST /write: upstream's base64 JSON.
func (s *Server) handleWrite(w http.ResponseWriter, r *http.Request) *apiError {
	var req wire.WriteRequest
	limit := int64(base64.StdEncoding.EncodedLen(int(s.maxFileBytes))) + jsonBodyLimit
	if e := decodeJSON(w, r, limit, &req); e != nil {
		return e
	}
	data, err := base64.StdEncoding.DecodeString(req.ContentB64)
	if err != nil {
		if data, err = base64.RawStdEncoding.DecodeString(req.ContentB64); err != nil {
			return errInvalid("content_b64 is not base64: %v", err)
		}
	}
	if int64(len(data)) > s.maxFileBytes {
		return errTooLarge("content", int64(len(data)), s.maxFileBytes)
	}
	if req.Path == "" {
		return errInvalid("path is required")
	}
	n, e := s.writeFile(s.resolve(req.Path), bytes.NewReader(data), true)
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, wire.WriteResponse{Path: req.Path, BytesWritten: int(n)})
	return nil
}

// handleFiles is PUT /files?path=P: the raw body, streamed into place atomically.
func (s *Server) handleFiles(w http.ResponseWriter, r *http.Request) *apiError {
	p := r.URL.Query().Get("path")
	if p == "" {
		return errInvalid("query parameter path is required")
	}
	if r.ContentLength > s.maxFileBytes {
		return errTooLarge("content", r.ContentLength, s.maxFileBytes)
	}
	body := http.MaxBytesReader(w, r.Body, s.maxFileBytes)
	n, e := s.writeFile(s.resolve(p), body, true)
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, wire.WriteResponse{Path: p, BytesWritten: int(n)})
	return nil
}

// handleEdit is POST /edit: fileops.ApplyEdit, written back atomically with the file's mode.
func (s *Server) handleEdit(w http.ResponseWriter, r *http.Request) *apiError {
	var req wire.EditRequest
	if e := decodeJSON(w, r, jsonBodyLimit, &req); e != nil {
		return e
	}
	p := s.resolve(req.Path)
	data, _, e := s.readFile(p)
	if e != nil {
		return e
	}
	out, n, err := fileops.ApplyEdit(data, req.Old, req.New, req.ReplaceAll)
	var ce *fileops.CountError
	switch {
	case errors.Is(err, fileops.ErrEmptyOld):
		return errInvalid("%v", err)
	case errors.As(err, &ce) && ce.Count == 0:
		e := newError(http.StatusBadRequest, wire.CodeStringNotFound, "String '%s' not found in file", req.Old)
		return e
	case errors.As(err, &ce):
		e := newError(http.StatusBadRequest, wire.CodeAmbiguous,
			"String '%s' found %d times. Use replace_all=True to replace all, or provide more context.", req.Old, ce.Count)
		e.body.Count = ce.Count
		return e
	case err != nil:
		return errInternal("%v", err)
	}
	if int64(len(out)) > s.maxFileBytes {
		return errTooLarge("edited content", int64(len(out)), s.maxFileBytes)
	}
	if _, e := s.writeFile(p, bytes.NewReader(out), false); e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, wire.EditResponse{Path: req.Path, Occurrences: n})
	return nil
}

// handleExists is POST /exists: is path a regular file (following symlinks)?
func (s *Server) handleExists(w http.ResponseWriter, r *http.Request) *apiError {
	var req wire.PathRequest
	if e := decodeJSON(w, r, jsonBodyLimit, &req); e != nil {
		return e
	}
	st, err := os.Stat(s.resolve(req.Path))
	writeJSON(w, http.StatusOK, wire.ExistsResponse{Exists: err == nil && st.Mode().IsRegular()})
	return nil
}

// handleLs is POST /ls: a directory listing, directories first, then by name.
func (s *Server) handleLs(w http.ResponseWriter, r *http.Request) *apiError {
	var req wire.PathRequest
	if e := decodeJSON(w, r, jsonBodyLimit, &req); e != nil {
		return e
	}
	dir := s.resolve(req.Path)
	st, err := os.Stat(dir)
	if err != nil {
		return fsError(dir, err, true)
	}
	if !st.IsDir() {
		return errNotDir(dir)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return fsError(dir, err, false)
	}
	entries := make([]fileops.Entry, 0, len(des))
	for _, de := range des {
		full := path.Join(dir, de.Name())
		li, err := os.Lstat(full)
		if err != nil {
			continue // gone meanwhile
		}
		isDir := li.IsDir()
		if li.Mode()&fs.ModeSymlink != 0 {
			if ti, err := os.Stat(full); err == nil {
				isDir = ti.IsDir()
			}
		}
		entries = append(entries, fileops.Entry{
			Name:    de.Name(),
			Path:    full,
			IsDir:   isDir,
			Size:    li.Size(),
			ModTime: li.ModTime().Truncate(time.Second).UTC(),
		})
	}
	fileops.SortLs(entries)
	rows := make([]wire.FileInfo, len(entries))
	for i, en := range entries {
		mt := en.ModTime
		rows[i] = wire.FileInfo{Name: en.Name, Path: en.Path, IsDir: en.IsDir, Size: en.Size, ModifiedAt: &mt}
	}
	writeJSON(w, http.StatusOK, rows)
	return nil
}

// writeFile writes src to p atomically: into a temporary file in the same directory, then renamed
// over p. An existing file keeps its permission bits; a new one gets 0644. A symlink at p is
// followed, so the file it points to is replaced, as a shell redirect would. With mkdirs, missing
// parent directories are created with 0755.
//
// Where a rename cannot work (p is a mount point such as /etc/hosts, or its directory is not
// writable while p is) an existing file is rewritten in place instead.
func (s *Server) writeFile(p string, src io.Reader, mkdirs bool) (int64, *apiError) {
	if real, err := filepath.EvalSymlinks(p); err == nil {
		p = real
	}
	perm := fs.FileMode(0o644)
	st, err := os.Stat(p)
	switch {
	case err == nil && st.IsDir():
		return 0, errIsDir(p)
	case err == nil && !st.Mode().IsRegular():
		return 0, errInvalid("%s: not a regular file", p)
	case err == nil:
		perm = st.Mode().Perm()
	case errors.Is(err, fs.ErrNotExist):
		if mkdirs {
			if err := os.MkdirAll(path.Dir(p), 0o755); err != nil {
				return 0, fsError(p, err, false)
			}
		}
	default:
		return 0, fsError(p, err, false)
	}
	exists := err == nil

	tmp, err := os.CreateTemp(path.Dir(p), ".sandbox-write-*.tmp")
	if err != nil {
		if exists && inPlaceOK(err) {
			return writeInPlace(p, src)
		}
		return 0, fsError(p, err, false)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	n, err := io.Copy(tmp, src)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fsError(p, err, false)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		if !exists || !inPlaceOK(err) {
			return 0, fsError(p, err, false)
		}
		f, oerr := os.Open(tmp.Name())
		if oerr != nil {
			return 0, fsError(p, err, false)
		}
		defer f.Close()
		return writeInPlace(p, f)
	}
	return n, nil
}

func inPlaceOK(err error) bool {
	return errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EXDEV) ||
		errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EROFS)
}

func writeInPlace(p string, src io.Reader) (int64, *apiError) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return 0, fsError(p, err, false)
	}
	n, err := io.Copy(f, src)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fsError(p, err, false)
	}
	return n, nil
}
