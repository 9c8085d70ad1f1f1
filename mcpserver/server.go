// Package mcpserver serves the console toolset (package toolset) over the Model Context Protocol,
// on the official Go SDK: upstream's tool names, JSON schemas and exact output strings, for any
// MCP client. Every MCP session gets its own sandbox from a SessionManager, made on its first
// tool call and released when the session ends (or by the manager's idle cleanup when a client
// vanishes without ending it), so two sessions never see each other's files.
//
//	m, _ := podsandbox.NewSessionManager(factory)
//	s, _ := mcpserver.New(m, mcpserver.WithToolsetOptions(toolset.WithExecuteApproval(false)))
//	err := s.RunStdio(ctx)                                  // or:
//	http.ListenAndServe("127.0.0.1:8090", s.HTTPHandler())  // streamable HTTP
//
// MCP has no approval round trip every client supports, so a tool that requires approval (by
// default execute; and whatever a ruleset marks Ask) is refused with a result that says how to
// allow it, unless WithApproveAll is given. Tool annotations say which tools only read.
package mcpserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/toolset"
)

// Server is an MCP server over a SessionManager. It does not own the manager: Shutdown it after
// the server has stopped.
type Server struct {
	m          *podsandbox.SessionManager
	topts      []toolset.Option
	approveAll bool
	log        *slog.Logger
	srv        *mcp.Server

	stdioID string // the sandbox id of a session whose transport names none (stdio)

	wg       sync.WaitGroup // one goroutine per live session, releasing its sandbox at the end
	mu       sync.Mutex
	closed   bool
	sessions map[*mcp.ServerSession]struct{}
	toolsets map[string]*sessionTools // by sandbox id
}

// sessionTools is one MCP session's toolset, over the sandbox it was made for.
type sessionTools struct {
	sb podsandbox.Sandbox
	ts *toolset.Toolset
}

// Option configures New.
type Option func(*Server)

// WithToolsetOptions passes options to every session's toolset (permissions, edit format, ...).
func WithToolsetOptions(opts ...toolset.Option) Option {
	return func(s *Server) { s.topts = append(s.topts, opts...) }
}

// WithApproveAll lets tools that require approval run without asking anyone: use it when the MCP
// client asks its user before each call, or when the sandbox may run anything.
func WithApproveAll() Option { return func(s *Server) { s.approveAll = true } }

// WithLogger sets the server's logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// New returns a server whose tools run in sandboxes from m.
func New(m *podsandbox.SessionManager, opts ...Option) (*Server, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: mcpserver.New(nil manager)", podsandbox.ErrInvalidArgument)
	}
	s := &Server{m: m, log: slog.Default(), stdioID: "mcp-stdio-" + randomID(),
		sessions: map[*mcp.ServerSession]struct{}{}, toolsets: map[string]*sessionTools{}}
	for _, o := range opts {
		o(s)
	}
	tools, err := toolset.Definitions(s.topts...)
	if err != nil {
		return nil, err
	}
	s.srv = mcp.NewServer(&mcp.Implementation{Name: "podsandbox", Title: "podsandbox: a Kubernetes pod per session"},
		&mcp.ServerOptions{Logger: s.log, Instructions: toolset.SystemPrompt, InitializedHandler: s.track})
	for _, tool := range tools {
		s.srv.AddTool(&mcp.Tool{
			Name:        tool.Name,
			Description: tool.Description,
			InputSchema: tool.Parameters,
			Annotations: annotations(tool.Name),
		}, s.handler(tool))
	}
	return s, nil
}

// MCP returns the SDK server, to run on a transport of the caller's choice.
func (s *Server) MCP() *mcp.Server { return s.srv }

// RunStdio serves one MCP session on standard input and output until the client disconnects or
// ctx ends, and returns once the session's sandbox is released.
func (s *Server) RunStdio(ctx context.Context) error {
	ss, err := s.srv.Connect(ctx, &mcp.StdioTransport{}, nil)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = ss.Close() })
	err = ss.Wait()
	stop()
	s.release(context.WithoutCancel(ctx), s.sessionID(ss))
	if ctx.Err() != nil {
		return nil // asked to stop
	}
	return err
}

// HTTPHandler serves MCP's streamable HTTP transport: one sandbox per MCP session, released when
// the client ends the session, when it has been idle for idle (0: never; the manager's idle
// cleanup still applies), or at Close.
func (s *Server) HTTPHandler(idle time.Duration) http.Handler {
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.srv },
		&mcp.StreamableHTTPOptions{SessionTimeout: idle, Logger: s.log})
}

// track follows a session from its initialization to its end, then releases its sandbox.
func (s *Server) track(_ context.Context, req *mcp.InitializedRequest) {
	ss := req.Session
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = ss.Close()
		return
	}
	s.sessions[ss] = struct{}{}
	s.wg.Go(func() {
		_ = ss.Wait()
		s.mu.Lock()
		delete(s.sessions, ss)
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s.release(ctx, s.sessionID(ss))
	})
}

// Close ends every session, releases their sandboxes and waits for that. Stop serving first
// (cancel RunStdio, shut the HTTP server down).
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	live := make([]*mcp.ServerSession, 0, len(s.sessions))
	for ss := range s.sessions {
		live = append(live, ss)
	}
	s.mu.Unlock()
	for _, ss := range live {
		_ = ss.Close()
	}
	s.wg.Wait()
	return nil
}

// sessionID is the manager's id for the MCP session's sandbox.
func (s *Server) sessionID(ss *mcp.ServerSession) string {
	if id := ss.ID(); id != "" {
		return "mcp-" + id
	}
	return s.stdioID
}

func (s *Server) toolsFor(ctx context.Context, ss *mcp.ServerSession) (*toolset.Toolset, error) {
	id := s.sessionID(ss)
	sb, err := s.m.GetOrCreate(ctx, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.toolsets[id]; st != nil && st.sb == sb {
		return st.ts, nil
	}
	ts, err := toolset.New(sb, s.topts...) // a new sandbox (the old one died): a fresh staleness guard
	if err != nil {
		return nil, err
	}
	s.toolsets[id] = &sessionTools{sb: sb, ts: ts}
	return ts, nil
}

// release ends the sandbox of session id (a no-op when it has none).
func (s *Server) release(ctx context.Context, id string) {
	s.mu.Lock()
	delete(s.toolsets, id)
	s.mu.Unlock()
	if _, err := s.m.Release(ctx, id); err != nil {
		s.log.Warn("could not release the session's sandbox", "session", id, "err", err)
	}
}

func (s *Server) handler(tool toolset.Tool) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if tool.RequiresApproval && !s.approveAll {
			return errorResult(fmt.Sprintf("Error: %s requires a person's approval, which this MCP server cannot ask for. "+
				"Start it with approval turned off for this tool (podsandbox mcp --approve-all) if the sandbox may do this unasked.", tool.Name)), nil
		}
		ts, err := s.toolsFor(ctx, req.Session)
		if err != nil {
			return nil, fmt.Errorf("no sandbox for this session: %w", err)
		}
		args := json.RawMessage(req.Params.Arguments)
		if len(args) == 0 {
			args = json.RawMessage("{}")
		}
		out, err := ts.Call(ctx, tool.Name, args)
		var ae *toolset.ArgumentError
		switch {
		case errors.As(err, &ae):
			return errorResult(ae.Error()), nil
		case err != nil:
			return nil, err
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: out}}}, nil
	}
}

func errorResult(msg string) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: msg}}}
}

// annotations tells clients which tools only read the sandbox and which may change or destroy
// what is in it. Nothing a tool does leaves its sandbox, as far as the tool itself goes.
func annotations(name string) *mcp.ToolAnnotations {
	no := false
	switch name {
	case toolset.ToolLs, toolset.ToolReadFile, toolset.ToolGlob, toolset.ToolGrep:
		return &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: &no}
	case toolset.ToolExecute:
		return &mcp.ToolAnnotations{} // may do anything, reach the network included
	}
	return &mcp.ToolAnnotations{OpenWorldHint: &no}
}

// randomID makes the stdio session's sandbox id unique per process: two MCP clients that each
// start a server must not share a sandbox.
func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
