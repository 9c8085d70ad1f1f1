package podsandbox

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	"github.com/podsandbox/podsandbox/internal/fileops"
	"github.com/podsandbox/podsandbox/internal/wire"
)

// httpTransport talks to the in-pod server (cmd/sandbox-server) through one of three reaches: the
// pod IP, the API server's pods/proxy subresource, or a port-forward tunnel. The token travels in
// the X-Sandbox-Token header only (never in a URL); pods/proxy passes it through while the API
// server consumes the caller's own Authorization header.
type httpTransport struct {
	s     *KubernetesPodSandbox
	token string
	reach Reach
	ip    string

	mu     sync.Mutex
	client *http.Client
	base   string // URL prefix the routes are appended to
	pf     *portforward.PortForwarder
	pfStop chan struct{}
	pfDone chan struct{} // closed when the tunnel's goroutine has returned
}

func newHTTPTransport(s *KubernetesPodSandbox, token string) *httpTransport {
	return newHTTPTransportAt(s, token, s.podIP)
}

func newHTTPTransportAt(s *KubernetesPodSandbox, token, ip string) *httpTransport {
	r := s.cfg.reach
	if r == ReachAuto {
		r = ReachProxy
		if inCluster() {
			r = ReachPodIP
		}
	}
	return &httpTransport{s: s, token: token, reach: r, ip: ip}
}

// setup resolves the client and base URL for the reach, once.
func (t *httpTransport) setup(ctx context.Context) (*http.Client, string, string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pfDone != nil && isEnded(t.pfDone) {
		// The tunnel ended: client-go's port-forward stops at the first connection the pod
		// refuses (a probe that came before the server listened, a server restart). Open another.
		t.client, t.pfStop, t.pfDone, t.pf = nil, nil, nil, nil
	}
	if t.client == nil {
		if err := t.connect(ctx); err != nil {
			return nil, "", "", err
		}
	}
	return t.client, t.base, t.token, nil
}

// connect resolves the client and base URL for the reach; t.mu is held.
func (t *httpTransport) connect(ctx context.Context) error {
	port := strconv.Itoa(t.s.cfg.port)
	switch t.reach {
	case ReachPodIP:
		if t.ip == "" {
			return fmt.Errorf("podsandbox: pod %s has no IP yet", t.s.podName)
		}
		t.client, t.base = &http.Client{Transport: t.s.kc.podHTTP}, "http://"+net.JoinHostPort(t.ip, port)
	case ReachProxy:
		c, err := t.s.kc.proxyClient()
		if err != nil {
			return err
		}
		t.client = c
		t.base = t.s.podURL(":"+port, "proxy")
	case ReachPortForward:
		local, err := t.forward(ctx)
		if err != nil {
			return err
		}
		t.client, t.base = &http.Client{Transport: t.s.kc.podHTTP}, "http://"+net.JoinHostPort("127.0.0.1", strconv.Itoa(local))
	default:
		return fmt.Errorf("%w: reach %q", ErrInvalidArgument, t.reach)
	}
	return nil
}

// forward opens a port-forward tunnel from a free loopback port to the server's port.
func (t *httpTransport) forward(ctx context.Context) (int, error) {
	if t.s.rest == nil {
		return 0, fmt.Errorf("%w: port-forward needs a REST configuration: give NewClient one", ErrInvalidArgument)
	}
	rt, upgrader, err := spdy.RoundTripperFor(t.s.rest)
	if err != nil {
		return 0, err
	}
	u, err := url.Parse(t.s.podURL("", "portforward"))
	if err != nil {
		return 0, err
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, "POST", u)
	stop, ready := make(chan struct{}), make(chan struct{})
	pf, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(t.s.cfg.port)}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		return 0, err
	}
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		errc <- pf.ForwardPorts()
	}()
	abort := func() { close(stop); <-done }
	select {
	case <-ready:
	case err := <-errc:
		<-done
		return 0, fmt.Errorf("podsandbox: port-forward: %w", err)
	case <-ctx.Done():
		abort()
		return 0, ctx.Err()
	}
	ports, err := pf.GetPorts()
	if err != nil || len(ports) == 0 {
		abort()
		return 0, fmt.Errorf("podsandbox: port-forward: no local port: %v", err)
	}
	t.pf, t.pfStop, t.pfDone = pf, stop, done
	return int(ports[0].Local), nil
}

// close stops the port-forward tunnel, if any, and waits for it.
func (t *httpTransport) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pfStop != nil {
		close(t.pfStop)
		<-t.pfDone
		t.pfStop, t.pfDone = nil, nil
	}
	t.client = nil
}

// do sends one request; a non-2xx answer becomes a typed error.
func (t *httpTransport) do(ctx context.Context, method, route string, query url.Values, body io.Reader, auth bool, extra ...http.Header) (*http.Response, error) {
	client, base, token, err := t.setup(ctx)
	if err != nil {
		return nil, err
	}
	u := base + route
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if auth {
		req.Header.Set(wire.TokenHeader, token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range extra {
		for k, v := range h {
			req.Header[k] = v
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("podsandbox: %s %s: %w", method, route, redactErr(err, token))
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp, nil
}

// redactErr makes sure no error text carries the token.
func redactErr(err error, token string) error {
	if token != "" && strings.Contains(err.Error(), token) {
		return errors.New(strings.ReplaceAll(err.Error(), token, "[redacted]"))
	}
	return err
}

// serverError is an error answer that is not one of the typed ones.
type serverError struct {
	Status int
	Msg    string
}

func (e *serverError) Error() string {
	return fmt.Sprintf("sandbox server answered %d: %s", e.Status, e.Msg)
}

func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var we wire.Error
	if json.Unmarshal(b, &we) != nil || we.Code == "" {
		msg := strings.TrimSpace(string(b))
		if resp.StatusCode == http.StatusUnauthorized {
			return ErrUnauthorized
		}
		return &serverError{Status: resp.StatusCode, Msg: msg}
	}
	return &wireErr{we}
}

// wireErr carries a typed server error until the caller adds the path.
type wireErr struct{ e wire.Error }

func (w *wireErr) Error() string { return w.e.Error }

func (t *httpTransport) typed(op, p string, err error) error {
	var we *wireErr
	if !errors.As(err, &we) {
		return err
	}
	e := we.e
	switch e.Code {
	case wire.CodeNotFound:
		return &PathError{Op: op, Path: p, Err: ErrNotFound}
	case wire.CodeIsDirectory:
		return &PathError{Op: op, Path: p, Err: ErrIsDirectory}
	case wire.CodeNotDirectory:
		return &PathError{Op: op, Path: p, Err: ErrNotDirectory}
	case wire.CodeTooLarge:
		return &FileTooLargeError{Path: p, Size: e.Size, Limit: e.Limit}
	case wire.CodeOffset:
		return &OffsetError{Path: p, Lines: e.Lines, Offset: -1}
	case wire.CodeStringNotFound, wire.CodeAmbiguous:
		return &EditError{Path: p, Count: e.Count}
	case wire.CodeInvalid:
		return fmt.Errorf("%w: %s", ErrInvalidArgument, e.Error)
	case wire.CodeUnauthorized:
		return ErrUnauthorized
	case wire.CodeExists:
		return fmt.Errorf("%w: %w: %s", ErrInvalidArgument, errProcIDTaken, e.Error)
	}
	return fmt.Errorf("podsandbox: %s %s: %s", op, p, e.Error)
}

func (t *httpTransport) postJSON(ctx context.Context, route string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	resp, err := t.do(ctx, http.MethodPost, route, nil, bytes.NewReader(b), true)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("podsandbox: %s: malformed answer: %w", route, err)
	}
	return nil
}

func (t *httpTransport) health(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := t.do(ctx, http.MethodGet, wire.RouteHealth, nil, nil, false)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

func (t *httpTransport) exec(ctx context.Context, command string, c ExecConfig) (*ExecuteResponse, error) {
	req := wire.ExecRequest{
		Command: command, TimeoutSeconds: c.Timeout.Seconds(), NoOutputSeconds: max(c.NoOutputTimeout.Seconds(), 0),
		Env: c.Env, Dir: c.Dir, Stdin: c.Stdin != nil || c.PTY != nil,
		RequestID: c.durable.id, StoreLimit: c.durable.storeLimit, Keep: c.durable.keep,
	}
	if c.PTY != nil {
		req.PTY = &wire.TerminalSize{Rows: c.PTY.Rows, Cols: c.PTY.Cols}
	}
	if c.Stdout == nil && c.Stderr == nil && c.OutputLimit <= wire.MaxResultLimit {
		// Only the capped result is kept: the server sends that alone, and keeps the output file
		// (servers that predate the field send everything, and the capture below caps it the
		// same way).
		req.ResultLimit, req.FileLimit = c.OutputLimit, c.OutputFileLimit
	}
	spec, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var body io.Reader = bytes.NewReader(append(spec, '\n'))
	endInput := func() {}
	switch {
	case c.PTY != nil:
		// The terminal's input stays open for resizes until the exit frame: then it ends, so
		// that a proxy between here and the server can finish the response.
		tctx, tcancel := context.WithCancel(ctx)
		defer tcancel()
		endInput = tcancel
		body = io.MultiReader(body, newTerminalInput(tctx, c.Stdin, c.Resize))
	case c.Stdin != nil:
		body = io.MultiReader(body, c.Stdin)
	}
	// The server enforces the timeout; the client deadline only guards against a lost server.
	ctx, cancel := context.WithTimeout(ctx, c.Timeout+30*time.Second)
	defer cancel()
	ctx, stop := t.s.whileAlive(ctx)
	defer stop()
	resp, err := t.do(ctx, http.MethodPost, wire.RouteExecStream, nil, body, true, acceptBinary)
	if err != nil {
		if gone := goneCause(ctx); gone != nil {
			return nil, gone
		}
		return nil, t.typed("exec", "", err)
	}
	defer resp.Body.Close()
	capt := newCapture(c.OutputLimit, c.Stdout, c.Stderr)
	defer capt.close()
	out, errw := capt.stream(1), capt.stream(2)
	next := ndjsonFrames(resp.Body)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), wire.StreamBinary) {
		next = binaryFrames(resp.Body)
	}
	for {
		f, err := next()
		if err != nil {
			if gone := goneCause(ctx); gone != nil {
				return nil, gone
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			// The server stops a command whose request ends, so the command is not left running.
			return nil, connectionLost(t.s.podName, "the connection to the in-pod server broke", err)
		}
		switch f.Type {
		case wire.FrameStdout:
			_, _ = out.Write(f.Data)
		case wire.FrameStderr:
			_, _ = errw.Write(f.Data)
		case wire.FrameExit:
			endInput()
			// Read the end of the chunked body, so the keep-alive connection is reused instead of
			// closed (with HTTP/1.1, a new TLS handshake to the API server on every command).
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			if f.Error != "" {
				return nil, fmt.Errorf("podsandbox: exec: %s", f.Error)
			}
			if f.Stopped {
				return nil, fmt.Errorf("%w: pod %s: the in-pod server is shutting down (the pod is being deleted or evicted) and killed the command (exit code %d)",
					ErrSandboxGone, t.s.podName, f.ExitCode)
			}
			r := capt.response(f.ExitCode, f.TimedOut)
			if f.Result != nil {
				r = resultResponse(f.Result, f.ExitCode, f.TimedOut)
			}
			r.NoOutputTimedOut = f.NoOutput
			return r, nil
		}
	}
}

// acceptBinary asks /exec/stream for wire.StreamBinary frames.
var acceptBinary = http.Header{"Accept": {wire.StreamBinary}}

// ndjsonFrames decodes NDJSON frames (servers that do not speak the binary form).
func ndjsonFrames(r io.Reader) func() (wire.Frame, error) {
	dec := json.NewDecoder(r)
	return func() (wire.Frame, error) {
		var f wire.Frame
		err := dec.Decode(&f)
		return f, err
	}
}

// binaryFrames decodes wire.StreamBinary frames. A frame's Data is only valid until the next call.
func binaryFrames(r io.Reader) func() (wire.Frame, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	var buf []byte
	return func() (wire.Frame, error) {
		typ, data, err := wire.ReadFrame(br, buf)
		if err != nil {
			return wire.Frame{}, err
		}
		buf = data
		f := wire.Frame{Type: typ}
		if f.Type == wire.FrameExit {
			err := json.Unmarshal(data, &f)
			return f, err
		}
		f.Data = data
		return f, nil
	}
}

func (t *httpTransport) read(ctx context.Context, p string, offset, limit int) (string, error) {
	if offset == 0 && limit == wire.ReadRawLimit {
		// The server answers exactly this request (the Python client's read_bytes) with the raw
		// content; a one-line-shorter limit reads the same lines, numbered. A file of 10**9 lines
		// is far beyond the file size limit.
		limit--
	}
	var r wire.ReadResponse
	err := t.postJSON(ctx, wire.RouteRead, wire.ReadRequest{Path: p, Offset: offset, Limit: limit}, &r)
	if err != nil {
		err = t.typed("read", p, err)
		var oe *OffsetError
		if errors.As(err, &oe) {
			oe.Offset = offset
		}
		return "", err
	}
	return r.Content, nil
}

func (t *httpTransport) readBytes(ctx context.Context, p string) ([]byte, error) {
	b, _ := json.Marshal(wire.PathRequest{Path: p})
	resp, err := t.do(ctx, http.MethodPost, wire.RouteReadBytes, nil, bytes.NewReader(b), true)
	if err != nil {
		return nil, t.typed("read", p, err)
	}
	defer resp.Body.Close()
	limit := t.s.cfg.maxFileBytes
	if resp.ContentLength > limit {
		return nil, &FileTooLargeError{Path: p, Size: resp.ContentLength, Limit: limit}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %v", ErrOutputIncomplete, p, err)
	}
	if int64(len(data)) > limit {
		return nil, &FileTooLargeError{Path: p, Size: -1, Limit: limit}
	}
	if resp.ContentLength >= 0 && int64(len(data)) != resp.ContentLength {
		return nil, fmt.Errorf("%w: read %s: got %d of %d bytes", ErrOutputIncomplete, p, len(data), resp.ContentLength)
	}
	return data, nil
}

func (t *httpTransport) write(ctx context.Context, p string, content []byte) (int, error) {
	resp, err := t.do(ctx, http.MethodPut, wire.RouteFiles, url.Values{"path": {p}}, bytes.NewReader(content), true)
	if err != nil {
		return 0, t.typed("write", p, err)
	}
	defer resp.Body.Close()
	var w wire.WriteResponse
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
		return 0, fmt.Errorf("podsandbox: write %s: malformed answer: %w", p, err)
	}
	if w.BytesWritten != len(content) {
		return 0, fmt.Errorf("%w: write %s: server stored %d of %d bytes", ErrOutputIncomplete, p, w.BytesWritten, len(content))
	}
	return w.BytesWritten, nil
}

func (t *httpTransport) edit(ctx context.Context, p, old, new string, replaceAll bool) (int, error) {
	var r wire.EditResponse
	err := t.postJSON(ctx, wire.RouteEdit, wire.EditRequest{Path: p, Old: old, New: new, ReplaceAll: replaceAll}, &r)
	if err != nil {
		err = t.typed("edit", p, err)
		var ee *EditError
		if errors.As(err, &ee) {
			ee.Old = old
		}
		return 0, err
	}
	return r.Occurrences, nil
}

func (t *httpTransport) ls(ctx context.Context, dir string) ([]fileops.Entry, error) {
	var rows []wire.FileInfo
	if err := t.postJSON(ctx, wire.RouteLs, wire.PathRequest{Path: dir}, &rows); err != nil {
		return nil, t.typed("ls", dir, err)
	}
	return entries(rows), nil
}

func (t *httpTransport) glob(ctx context.Context, pattern, root string) ([]fileops.Entry, error) {
	var rows []wire.FileInfo
	if err := t.postJSON(ctx, wire.RouteGlob, wire.GlobRequest{Pattern: pattern, Path: root}, &rows); err != nil {
		return nil, t.typed("glob", root, err)
	}
	return entries(rows), nil
}

func entries(rows []wire.FileInfo) []fileops.Entry {
	es := make([]fileops.Entry, len(rows))
	for i, r := range rows {
		es[i] = fileops.Entry{Name: r.Name, Path: r.Path, IsDir: r.IsDir, Size: r.Size}
		if r.ModifiedAt != nil {
			es[i].ModTime = r.ModifiedAt.UTC()
		}
	}
	return es
}

func (t *httpTransport) grep(ctx context.Context, pattern, root, glob string, hidden bool) ([]GrepMatch, error) {
	var rows []wire.GrepMatch
	err := t.postJSON(ctx, wire.RouteGrep, wire.GrepRequest{Pattern: pattern, Path: root, Glob: glob, IncludeHidden: hidden}, &rows)
	if err != nil {
		return nil, t.typed("grep", root, err)
	}
	ms := make([]GrepMatch, len(rows))
	for i, r := range rows {
		ms[i] = GrepMatch(r)
	}
	return ms, nil
}

func (t *httpTransport) exists(ctx context.Context, p string) (bool, error) {
	var r wire.ExistsResponse
	if err := t.postJSON(ctx, wire.RouteExists, wire.PathRequest{Path: p}, &r); err != nil {
		return false, t.typed("exists", p, err)
	}
	return r.Exists, nil
}

// configure binds the server to a new token and per-session env (warm pools).
func (t *httpTransport) configure(ctx context.Context, token string, env map[string]string) error {
	if err := t.postJSON(ctx, wire.RouteConfigure, wire.ConfigureRequest{Token: token, Env: env}, &wire.Health{}); err != nil {
		return t.typed("configure", "", err)
	}
	if token != "" {
		t.mu.Lock()
		t.token = token
		t.mu.Unlock()
	}
	return nil
}
