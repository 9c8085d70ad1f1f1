package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/podsandbox/podsandbox/internal/fileops"
	"github.com/podsandbox/podsandbox/internal/outcap"
	"github.com/podsandbox/podsandbox/internal/wire"
)

// TimeoutExitCode is the exit code of a command killed by its timeout, as timeout(1).
const TimeoutExitCode = 124

// startErrorExitCode is the exit_code of an /exec/stream exit frame whose command never ran.
const startErrorExitCode = 127

// maxDrainBytes bounds what is read from a pipe, without waiting, once the wait delay is over.
const maxDrainBytes = 1 << 20

var errTimedOut = errors.New("command timed out")

var errNoOutput = errors.New("command wrote nothing for its no-output timeout")

// execSpec is a validated command.
type execSpec struct {
	command string
	dir     string
	env     []string
	timeout time.Duration
	// noOutput > 0 kills the command when it writes nothing for that long.
	noOutput time.Duration
	// stdin feeds the command's standard input; nil means /dev/null.
	stdin io.Reader
	// stopStdin, if set, unblocks a Read of stdin that is still pending when the command is over.
	stopStdin func()
	// onStart, if set, is called with the process group id once the command runs.
	onStart func(pgid int)
	// durable: the command outlives its request (Drain lets it end by itself).
	durable bool
	// pty, if set, runs the command on a pseudo-terminal of that size; stdin then carries
	// terminal input frames (see terminalInput).
	pty *wire.TerminalSize
}

type execResult struct {
	exitCode int
	timedOut bool
	noOutput bool // the timeout that fired was the no-output one
}

// sinkFunc receives output as it arrives: stream is wire.FrameStdout or wire.FrameStderr. p is only
// valid during the call. Calls are serialised by the caller's own locking, not by run.
type sinkFunc func(stream string, p []byte)

// prepareExec validates req and resolves its directory, timeout and environment.
func (s *Server) prepareExec(req *wire.ExecRequest) (*execSpec, *apiError) {
	if e := validEnv(req.Env); e != nil {
		return nil, e
	}
	dir := fileops.Resolve(req.Dir, s.workDir)
	st, err := os.Stat(dir)
	switch {
	case err != nil:
		e := fsError(dir, err, true)
		e.body.Error = "working directory " + e.body.Error
		return nil, e
	case !st.IsDir():
		return nil, errNotDir(dir)
	}
	timeout := DefaultExecTimeout
	if req.TimeoutSeconds > 0 {
		timeout = time.Duration(min(req.TimeoutSeconds, maxExecTimout.Seconds()) * float64(time.Second))
	}
	s.mu.Lock()
	env := slices.Clone(s.baseEnv)
	env = appendEnv(env, s.env)
	s.mu.Unlock()
	env = appendEnv(env, req.Env)
	spec := &execSpec{command: req.Command, dir: dir, env: env, timeout: max(timeout, time.Millisecond)}
	if req.NoOutputSeconds > 0 {
		spec.noOutput = max(time.Duration(min(req.NoOutputSeconds, maxExecTimout.Seconds())*float64(time.Second)), time.Millisecond)
	}
	return spec, nil
}

// appendEnv appends m in key order; os/exec keeps the last value of a duplicated key.
func appendEnv(env []string, m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+m[k])
	}
	return env
}

// run runs spec with `shell -c` in its own process group and hands its output to sink as it
// arrives. It returns when the shell has exited and its output has been read: output still held
// open by background children is read for at most the wait delay after the shell exits (whatever
// is then already in the pipes is still delivered), later output is dropped and the children are
// left running. On timeout or when ctx ends the whole process group is killed with SIGKILL.
func (s *Server) run(ctx context.Context, spec *execSpec, sink sinkFunc) (execResult, *apiError) {
	ctx, cancelQuiet := context.WithCancelCause(ctx)
	defer cancelQuiet(nil)
	ctx, cancel := context.WithTimeoutCause(ctx, spec.timeout, errTimedOut)
	defer cancel()

	cmd := exec.CommandContext(ctx, s.shell, "-c", spec.command)
	cmd.Dir = spec.dir
	cmd.Env = spec.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = s.waitDelay
	var timedOut, quiet atomic.Bool
	cmd.Cancel = func() error {
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, errTimedOut):
			timedOut.Store(true)
		case errors.Is(cause, errNoOutput):
			timedOut.Store(true)
			quiet.Store(true)
		}
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}

	var files []*os.File // every pipe end, closed on failure
	closeAll := func() {
		for _, f := range files {
			_ = f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	// The command's ends (closed here once it has them) and ours.
	var outR, outW, errR, errW, inR, inW, master, slave *os.File
	var err error
	if spec.pty != nil {
		// One terminal for stdin, stdout and stderr, the command's controlling terminal in a
		// session of its own (so its process group is still its pid).
		if master, slave, err = openPTY(*spec.pty); err != nil {
			return execResult{}, errInternal("pseudo-terminal: %v", err)
		}
		files = append(files, master, slave)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
		outR = master
	} else {
		if outR, outW, err = pipe(); err != nil {
			return execResult{}, errInternal("pipe: %v", err)
		}
		if errR, errW, err = pipe(); err != nil {
			closeAll()
			return execResult{}, errInternal("pipe: %v", err)
		}
		cmd.Stdout, cmd.Stderr = outW, errW
		if spec.stdin != nil {
			if inR, inW, err = pipe(); err != nil {
				closeAll()
				return execResult{}, errInternal("pipe: %v", err)
			}
			cmd.Stdin = inR
		}
	}

	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		closeAll()
		return execResult{}, newError(http.StatusServiceUnavailable, wire.CodeInternal, "server is shutting down")
	}
	err = cmd.Start()
	if err == nil {
		s.running[cmd.Process.Pid] = spec.durable
	}
	s.mu.Unlock()
	if err != nil {
		closeAll()
		if errors.Is(err, syscall.E2BIG) {
			return execResult{}, errInvalid("command and environment are too large to run: %v", err)
		}
		return execResult{}, errInternal("starting %s: %v", s.shell, err)
	}
	pgid := cmd.Process.Pid
	if spec.onStart != nil {
		spec.onStart(pgid)
	}
	// The child has its copies; ours would keep the pipes (or the terminal) open.
	for _, f := range []*os.File{outW, errW, inR, slave} {
		if f != nil {
			_ = f.Close()
		}
	}

	if spec.noOutput > 0 {
		// Every byte of output moves the no-output deadline.
		quietTimer := time.AfterFunc(spec.noOutput, func() { cancelQuiet(errNoOutput) })
		defer quietTimer.Stop()
		inner := sink
		sink = func(stream string, p []byte) {
			quietTimer.Reset(spec.noOutput)
			inner(stream, p)
		}
	}
	var draining atomic.Bool
	var pumps sync.WaitGroup
	pumps.Add(1)
	go pump(outR, wire.FrameStdout, sink, &draining, &pumps)
	if errR != nil {
		pumps.Add(1)
		go pump(errR, wire.FrameStderr, sink, &draining, &pumps)
	}

	stdinDone := make(chan struct{})
	switch {
	case master != nil && spec.stdin != nil:
		inW = master // input and resizes go to the terminal
		go func() {
			defer close(stdinDone)
			terminalInput(master, spec.stdin)
		}()
	case inW != nil:
		go func() {
			defer close(stdinDone)
			_, _ = io.Copy(inW, spec.stdin)
			_ = inW.Close()
		}()
	default:
		close(stdinDone)
	}

	waitErr := cmd.Wait()
	s.mu.Lock()
	delete(s.running, pgid)
	s.mu.Unlock()

	pumped := make(chan struct{})
	go func() { pumps.Wait(); close(pumped) }()
	select {
	case <-pumped:
	case <-time.After(s.waitDelay):
		// A background child holds stdout or stderr: stop waiting for it.
		draining.Store(true)
		now := time.Now()
		_ = outR.SetReadDeadline(now)
		if errR != nil {
			_ = errR.SetReadDeadline(now)
		}
		<-pumped
	}
	if master == nil {
		_ = outR.Close()
		_ = errR.Close()
	} else {
		defer master.Close() // after the input's writer below
	}
	if inW != nil {
		select {
		case <-stdinDone:
		default:
			_ = inW.SetWriteDeadline(time.Now())
			if spec.stopStdin != nil {
				spec.stopStdin()
			}
			<-stdinDone
		}
	}

	st := cmd.ProcessState
	if st == nil {
		return execResult{}, errInternal("waiting for command: %v", waitErr)
	}
	res := execResult{exitCode: st.ExitCode()}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		res.exitCode = 128 + int(ws.Signal())
	}
	if timedOut.Load() {
		res.exitCode, res.timedOut, res.noOutput = TimeoutExitCode, true, quiet.Load()
	}
	return res, nil
}

// pump copies f to sink until EOF, or, once draining is set and f's read deadline has passed,
// until f has nothing more to give without waiting.
func pump(f *os.File, stream string, sink sinkFunc, draining *atomic.Bool, wg *sync.WaitGroup) {
	defer wg.Done()
	buf := make([]byte, 256<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 && n < coalesceBytes && err == nil {
			n = gather(f, buf, n)
		}
		if n > 0 {
			sink(stream, buf[:n])
		}
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && draining.Load() {
			drainReady(f, stream, buf, sink)
		}
		return
	}
}

// A read of less than coalesceBytes waits up to coalesceWait for more before it is sent on. A
// command that writes its output a few KiB at a time would otherwise cost a frame, a write and,
// in API mode, a message through the API server, the kubelet and the runtime for each few KiB:
// 100 MiB went out as 30 000 messages. A command that pauses or ends is not held back: a pause
// costs at most coalesceWait, and the end of the output (the pipe closes) is sent at once.
const (
	coalesceBytes = 192 << 10
	coalesceWait  = time.Millisecond
)

// gather adds to buf[:n] what f gives within coalesceWait, until coalesceBytes are there or f
// closes, and returns the new length. It never waits longer and leaves f's deadline alone.
func gather(f *os.File, buf []byte, n int) int {
	rc, err := f.SyscallConn()
	if err != nil {
		return n
	}
	end := time.Now().Add(coalesceWait)
	for n < coalesceBytes {
		left := time.Until(end)
		if left <= 0 {
			break
		}
		var ready bool
		_ = rc.Control(func(fd uintptr) {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			k, perr := unix.Poll(fds, max(int(left/time.Millisecond), 1))
			ready = perr == nil && k > 0 && fds[0].Revents&unix.POLLIN != 0
		})
		if !ready {
			break // nothing more in time, or the pipe closed (the next Read says so)
		}
		var m int
		var rerr error
		if err := rc.Read(func(fd uintptr) bool {
			m, rerr = syscall.Read(int(fd), buf[n:])
			return true // never wait: poll said there is data
		}); err != nil || rerr != nil || m <= 0 {
			break
		}
		n += m
	}
	return n
}

// drainReady delivers what is already buffered in the pipe f, without waiting for more.
func drainReady(f *os.File, stream string, buf []byte, sink sinkFunc) {
	if f.SetReadDeadline(time.Time{}) != nil {
		return
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	for total := 0; total < maxDrainBytes; {
		var n int
		var rerr error
		// Returning true means "done": the pipe is non-blocking, so this never waits.
		if err := rc.Read(func(fd uintptr) bool {
			n, rerr = syscall.Read(int(fd), buf)
			return true
		}); err != nil || rerr != nil || n <= 0 {
			return
		}
		sink(stream, buf[:n])
		total += n
	}
}

// capture keeps a command's output for /exec, each stream and the combined output capped at limit
// bytes. Output over the cap is read and dropped, so the command never blocks on it.
type capture struct {
	mu        sync.Mutex
	limit     int
	stdout    []byte
	stderr    []byte
	combined  []byte
	truncated bool
}

func (c *capture) add(stream string, p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if stream == wire.FrameStdout {
		c.stdout = c.appendCapped(c.stdout, p)
	} else {
		c.stderr = c.appendCapped(c.stderr, p)
	}
	c.combined = c.appendCapped(c.combined, p)
}

func (c *capture) appendCapped(dst, p []byte) []byte {
	if room := c.limit - len(dst); len(p) > room {
		c.truncated = true
		p = p[:max(room, 0)]
	}
	return append(dst, p...)
}

// handleExec is POST /exec: run a command and return its captured output (upstream's shape).
func (s *Server) handleExec(w http.ResponseWriter, r *http.Request) *apiError {
	var req wire.ExecRequest
	if e := decodeJSON(w, r, execBodyLimit, &req); e != nil {
		return e
	}
	spec, e := s.prepareExec(&req)
	if e != nil {
		return e
	}
	limit := req.OutputLimit
	if limit <= 0 {
		limit = DefaultOutputLimit
	}
	c := &capture{limit: limit}
	res, e := s.run(r.Context(), spec, c.add)
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, wire.ExecResponse{
		Output:    string(c.combined),
		ExitCode:  res.exitCode,
		Truncated: c.truncated,
		Stdout:    string(c.stdout),
		Stderr:    string(c.stderr),
		TimedOut:  res.timedOut,
		NoOutput:  res.noOutput,
	})
	return nil
}

// handleExecStream is POST /exec/stream. The body is one JSON ExecRequest line, "\n", then the
// command's stdin when req.Stdin. The response is NDJSON frames: output as it arrives, uncapped,
// then one exit frame. Only an unreadable request line is an HTTP error; once it is parsed the
// status is 200 and a command that cannot run (bad dir, bad env, shutting down, start failure) is
// reported in the exit frame's error.
func (s *Server) handleExecStream(w http.ResponseWriter, r *http.Request) *apiError {
	body := bufio.NewReaderSize(r.Body, 64<<10)
	line, e := readLine(body, execBodyLimit)
	if e != nil {
		return e
	}
	var req wire.ExecRequest
	if err := json.Unmarshal(line, &req); err != nil {
		return errInvalid("first line of the body is not a JSON exec request: %v", err)
	}
	if !req.Stdin {
		// The body should end with the request line. Read it to EOF (so that net/http watches the
		// connection and cancels the request when the client goes away), but not forever.
		_, _ = io.CopyN(io.Discard, body, jsonBodyLimit)
	}
	if req.PTY != nil && (req.PTY.Rows == 0 || req.PTY.Cols == 0) {
		return errInvalid("terminal size %dx%d: want rows and columns above 0", req.PTY.Rows, req.PTY.Cols)
	}
	var rec *durable
	var finishLater func(code int, timedOut, stopped bool)
	if req.RequestID != "" {
		if req.PTY != nil {
			return errInvalid("a durable exec (request_id) has no terminal")
		}
		if req.Stdin {
			return errInvalid("a durable exec (request_id) takes no stdin")
		}
		if !s.beginDurable() {
			return newError(http.StatusServiceUnavailable, wire.CodeInternal, "server is shutting down")
		}
		// Ended here, or, once the command ran, when its record is finished (see below).
		ended := false
		defer func() {
			if !ended {
				s.endDurable()
			}
		}()
		finishLater = func(code int, timedOut, stopped bool) {
			ended = true
			go func() {
				defer s.endDurable()
				rec.finish(code, timedOut, stopped)
			}()
		}
		var e *apiError
		if rec, e = s.openDurable(req.RequestID, req.Command, max(req.StoreLimit, req.OutputLimit+1), req.Keep); e != nil {
			return e
		}
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	runCtx := ctx
	if rec != nil {
		// The command outlives its request: only its timeout or Shutdown ends it.
		runCtx = context.WithoutCancel(r.Context())
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	binary := strings.Contains(r.Header.Get("Accept"), wire.StreamBinary)
	if binary {
		h.Set("Content-Type", wire.StreamBinary)
	} else {
		h.Set("Content-Type", "application/x-ndjson")
	}
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if req.Stdin {
		// stdin is read while output is written. When the command ends before the client has sent
		// all of it, the pending read is interrupted with a read deadline on the connection, which
		// can leave an HTTP/1 connection unusable: never reuse it. (HTTP/2, the agent's protocol,
		// ends the one stream; "Connection: close" there would end every call on the connection.)
		_ = rc.EnableFullDuplex()
		if r.ProtoMajor == 1 {
			h.Set("Connection", "close")
		}
	}
	w.WriteHeader(http.StatusOK)
	fw := &frameWriter{w: w, rc: rc, onFail: cancel, binary: binary}
	fw.flush()

	// From here on errors are reported in the stream (clients behind pods/proxy only get the body
	// of a 2xx response).
	spec, e := s.prepareExec(&req)
	if e != nil {
		if rec != nil {
			rec.finish(startErrorExitCode, false, false)
		}
		fw.write(wire.Frame{Type: wire.FrameExit, ExitCode: startErrorExitCode, Error: e.body.Error})
		return nil
	}
	if rec != nil {
		spec.onStart, spec.durable = rec.started, true
	}
	spec.pty = req.PTY
	if req.Stdin {
		// A read error other than EOF means the client is gone: cancel the command.
		spec.stdin = &watchedReader{r: body, onErr: cancel}
		spec.stopStdin = func() { _ = rc.SetReadDeadline(time.Now()) }
	}

	// With Result, the output is kept here (head and tail, and the output file) and the result
	// goes in the exit frame. Else, with an output limit, each stream sends at most limit+1 bytes:
	// enough for the client to keep the first limit bytes of each stream and of their
	// interleaving, and to know what it lost. The rest is read and dropped here, so the command
	// runs to its real exit code.
	var (
		mu      sync.Mutex // the two streams' pumps call back concurrently
		sent    = map[string]int{}
		capture *outcap.Capture
		file    = &outputFile{root: s.outputRoot}
	)
	if req.ResultLimit > 0 {
		capture = outcap.New(min(req.ResultLimit, wire.MaxResultLimit))
		if req.FileLimit > 0 {
			capture.Spill(req.FileLimit, file.open)
		}
	}
	res, e := s.run(runCtx, spec, func(stream string, p []byte) {
		if rec != nil {
			rec.write(map[string]string{wire.FrameStdout: "out", wire.FrameStderr: "err"}[stream], p)
		}
		if capture != nil {
			mu.Lock()
			id := outcap.Stdout
			if stream == wire.FrameStderr {
				id = outcap.Stderr
			}
			capture.Add(id, p)
			mu.Unlock()
			return
		}
		if req.OutputLimit > 0 {
			mu.Lock()
			room := req.OutputLimit + 1 - sent[stream]
			if room > 0 {
				p = p[:min(room, len(p))]
				sent[stream] += len(p)
			}
			mu.Unlock()
			if room <= 0 {
				return
			}
		}
		fw.write(wire.Frame{Type: stream, Data: p})
	})
	if e != nil {
		if rec != nil {
			rec.finish(startErrorExitCode, false, false)
		}
		if capture != nil {
			file.close(capture.Result())
		}
		fw.write(wire.Frame{Type: wire.FrameExit, ExitCode: startErrorExitCode, Error: e.body.Error})
	} else {
		// A command killed by Shutdown did not end on its own: say so, or the client would take
		// exit 137 and part of the output for the command's result.
		stopped := res.exitCode > 128 && s.wasKilled()
		exit := wire.Frame{Type: wire.FrameExit, ExitCode: res.exitCode, TimedOut: res.timedOut, NoOutput: res.noOutput, Stopped: stopped}
		if capture != nil {
			r := capture.Result()
			exit.Result = wireResult(r, file.close(r))
		}
		fw.write(exit)
		if rec != nil {
			// The record's end is written after the response (a few file writes, which cost
			// more than the call itself on a slow disk); until then it reads as running, so a
			// client that re-attaches meanwhile waits for it. Drain waits for it too.
			finishLater(res.exitCode, res.timedOut, stopped)
		}
	}
	return nil
}

// readLine reads up to and without the first "\n" (or EOF), at most limit bytes.
func readLine(r *bufio.Reader, limit int64) ([]byte, *apiError) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if int64(len(line)) > limit {
			return nil, errTooLarge("exec request line", 0, limit)
		}
		switch {
		case err == nil:
			return bytes.TrimSuffix(line, []byte("\n")), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return line, nil
		default:
			return nil, errInvalid("reading request body: %v", err)
		}
	}
}

// watchedReader calls onErr when a Read fails with anything but EOF.
type watchedReader struct {
	r     io.Reader
	onErr func()
}

func (w *watchedReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		w.onErr()
	}
	return n, err
}

// frameWriter writes frames (NDJSON, or wire.StreamBinary when binary), flushing each one. After
// the first failed write it drops frames and calls onFail (the client is gone: cancel the command).
type frameWriter struct {
	mu     sync.Mutex
	w      io.Writer
	rc     *http.ResponseController
	failed bool
	onFail func()
	binary bool
	buf    []byte // head and data of a binary frame, reused (under mu)
}

func (f *frameWriter) write(fr wire.Frame) {
	var b []byte
	if f.binary {
		b = fr.Data
		if fr.Type == wire.FrameExit {
			b, _ = json.Marshal(fr)
		}
	} else {
		var err error
		if b, err = json.Marshal(fr); err != nil {
			return
		}
		b = append(b, '\n')
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failed {
		return
	}
	if f.binary {
		// One write of head and data: the response's small buffer would otherwise send the head
		// with the first few KiB of data as a frame of its own.
		f.buf = wire.AppendFrame(f.buf[:0], fr.Type, b)
		b = f.buf
	}
	if _, err := f.w.Write(b); err != nil {
		f.fail()
		return
	}
	if err := f.rc.Flush(); err != nil {
		f.fail()
	}
}

func (f *frameWriter) flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.rc.Flush(); err != nil {
		f.fail()
	}
}

func (f *frameWriter) fail() {
	f.failed = true
	f.onFail()
}
