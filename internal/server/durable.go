package server

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/podsandbox/podsandbox/internal/wire"
)

// A durable exec (an /exec/stream request with a RequestID) runs apart from its request and keeps
// a record in the layout of the client's background processes: cmd, spid (this server's pid: the
// record's owner is alive while it is), pgid, started, out and err (each capped; a ".cut" file
// when output was dropped, an ".eof" file at the end), and "exit", written in one write as
// "CODE ENDTIME" once the command is over. The client reads it with the same scripts as a
// background process when its stream breaks.

var durableID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// durableExpiry is how long the record of a finished durable exec without Keep stays for a client
// whose stream broke to re-attach to; records older than that are deleted when a later durable
// exec starts, at most once per sweepEvery (a sweep reads every record: not on every call).
const (
	durableExpiry = 2 * time.Minute
	sweepEvery    = 15 * time.Second
)

type durable struct {
	dir   string
	limit int64
	mu    sync.Mutex
	files map[string]*os.File
	n     map[string]int64
	cut   map[string]bool
}

// openDurable makes the record of request id, or fails with CodeExists when there is one.
func (s *Server) openDurable(id, command string, limit int, keep bool) (*durable, *apiError) {
	if !durableID.MatchString(id) {
		return nil, errInvalid("request id %q: want [a-z0-9][a-z0-9-]*, at most 63 bytes", id)
	}
	if err := os.MkdirAll(s.procRoot, 0o700); err != nil {
		return nil, errInternal("%v", err)
	}
	s.sweepDurable()
	dir := filepath.Join(s.procRoot, id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if os.IsExist(err) {
			return nil, newError(http.StatusConflict, wire.CodeExists, "request id %s is in use", id)
		}
		return nil, errInternal("%v", err)
	}
	d := &durable{dir: dir, limit: int64(limit), files: map[string]*os.File{}, n: map[string]int64{}, cut: map[string]bool{}}
	write := func(name, v string) error { return os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600) }
	err := write("cmd", command)
	if err == nil {
		err = write("spid", strconv.Itoa(os.Getpid())+"\n")
	}
	if err == nil {
		err = write("server", "") // removing the record must not kill its supervisor, this server
	}
	if err == nil && !keep {
		err = write("auto", "")
	}
	for _, name := range []string{"out", "err"} {
		if err == nil {
			d.files[name], err = os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		}
	}
	if err != nil {
		d.close()
		_ = os.RemoveAll(dir)
		return nil, errInternal("recording request %s: %v", id, err)
	}
	return d, nil
}

// sweepDurable deletes the records of finished durable execs without Keep that are past expiry.
func (s *Server) sweepDurable() {
	s.mu.Lock()
	due := time.Since(s.swept) >= sweepEvery
	if due {
		s.swept = time.Now()
	}
	s.mu.Unlock()
	if !due {
		return
	}
	ents, err := os.ReadDir(s.procRoot)
	if err != nil {
		return
	}
	for _, e := range ents {
		dir := filepath.Join(s.procRoot, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "auto")); err != nil {
			continue // a background process, or kept
		}
		if st, err := os.Stat(filepath.Join(dir, "exit")); err == nil && time.Since(st.ModTime()) > durableExpiry {
			_ = os.RemoveAll(dir)
		}
	}
}

// started records the command's process group.
func (d *durable) started(pgid int) {
	_ = os.WriteFile(filepath.Join(d.dir, "pgid"), []byte(strconv.Itoa(pgid)+"\n"), 0o600)
	_ = os.WriteFile(filepath.Join(d.dir, "started"), []byte(strconv.FormatInt(time.Now().Unix(), 10)+"\n"), 0o600)
}

// write appends output of stream ("out" or "err") up to the limit.
func (d *durable) write(stream string, p []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.files[stream]
	if f == nil {
		return
	}
	if room := d.limit - d.n[stream]; int64(len(p)) > room {
		p = p[:max(room, 0)]
		if !d.cut[stream] {
			d.cut[stream] = true
			_ = os.WriteFile(filepath.Join(d.dir, stream+".cut"), nil, 0o600)
		}
	}
	if len(p) > 0 {
		n, _ := f.Write(p)
		d.n[stream] += int64(n)
	}
}

func (d *durable) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, f := range d.files {
		if f != nil {
			_ = f.Close()
		}
		delete(d.files, k)
	}
}

// finish closes the output and records the end; stopped (the server is shutting down and killed
// the command) records no exit code, so the record reads as lost, not as the command's result.
func (d *durable) finish(code int, timedOut, stopped bool) {
	d.close()
	for _, s := range []string{"out", "err"} {
		_ = os.WriteFile(filepath.Join(d.dir, s+".eof"), nil, 0o600)
	}
	if stopped {
		return
	}
	if timedOut {
		_ = os.WriteFile(filepath.Join(d.dir, "timedout"), nil, 0o600)
	}
	_ = os.WriteFile(filepath.Join(d.dir, "exit"), fmt.Appendf(nil, "%d %d\n", code, time.Now().Unix()), 0o600)
}
