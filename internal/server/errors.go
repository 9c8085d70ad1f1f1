package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"syscall"

	"github.com/podsandbox/podsandbox/internal/wire"
)

// apiError is a failed request: an HTTP status and the wire.Error body sent with it.
type apiError struct {
	status int
	body   wire.Error
}

func (e *apiError) Error() string { return e.body.Code + ": " + e.body.Error }

func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, body: wire.Error{Error: fmt.Sprintf(format, args...), Code: code}}
}

func errInvalid(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, wire.CodeInvalid, format, args...)
}

func errInternal(format string, args ...any) *apiError {
	return newError(http.StatusInternalServerError, wire.CodeInternal, format, args...)
}

func errTooLarge(what string, size, limit int64) *apiError {
	e := newError(http.StatusRequestEntityTooLarge, wire.CodeTooLarge, "%s is over the limit of %d bytes", what, limit)
	e.body.Size = size
	e.body.Limit = limit
	return e
}

func errNotFound(p string) *apiError {
	return newError(http.StatusNotFound, wire.CodeNotFound, "%s: no such file or directory", p)
}

func errIsDir(p string) *apiError {
	return newError(http.StatusBadRequest, wire.CodeIsDirectory, "%s: is a directory", p)
}

func errNotDir(p string) *apiError {
	return newError(http.StatusBadRequest, wire.CodeNotDirectory, "%s: not a directory", p)
}

// fsError maps a file system error about path p to an apiError. lookup says the error came from
// looking p up (stat, open), where ENOTDIR means a parent is a file, i.e. p does not exist.
func fsError(p string, err error, lookup bool) *apiError {
	var ae *apiError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mbe):
		return errTooLarge("request body", 0, mbe.Limit)
	case errors.Is(err, fs.ErrNotExist):
		return errNotFound(p)
	case errors.Is(err, syscall.ENOTDIR):
		if lookup {
			return errNotFound(p)
		}
		return newError(http.StatusBadRequest, wire.CodeNotDirectory, "%s: a parent is not a directory", p)
	case errors.Is(err, syscall.EISDIR):
		return errIsDir(p)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		// wire has no permission code; the status tells the client what happened.
		return newError(http.StatusForbidden, wire.CodeInternal, "%s: %v", p, unwrapPathError(err))
	case errors.Is(err, syscall.ENAMETOOLONG), errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.ELOOP):
		return errInvalid("%s: %v", p, unwrapPathError(err))
	}
	return errInternal("%s: %v", p, unwrapPathError(err))
}

// unwrapPathError drops the *fs.PathError wrapper, whose text repeats the path.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(wire.Error{Error: "encoding response: " + err.Error(), Code: wire.CodeInternal})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", fmt.Sprint(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, e *apiError) { writeJSON(w, e.status, e.body) }

// decodeJSON reads the whole body (at most limit bytes) and unmarshals it into v. Reading to EOF
// matters: only then does net/http watch the connection and cancel the request context when the
// client goes away.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) *apiError {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge("request body", 0, mbe.Limit)
		}
		return errInvalid("reading request body: %v", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return errInvalid("request body is not valid JSON for this route: %v", err)
	}
	return nil
}
