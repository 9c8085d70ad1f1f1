package toolset_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/toolset"
)

func mustNew(t *testing.T, sb podsandbox.Sandbox, opts ...toolset.Option) *toolset.Toolset {
	t.Helper()
	ts, err := toolset.New(sb, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// toolsJSON renders tool definitions for a golden file, schemas expanded for review.
func toolsJSON(t *testing.T, tools []toolset.Tool) string {
	t.Helper()
	type row struct {
		Name             string          `json:"name"`
		RequiresApproval bool            `json:"requires_approval"`
		Description      string          `json:"description"`
		Parameters       json.RawMessage `json:"parameters"`
	}
	rows := make([]row, len(tools))
	for i, tl := range tools {
		rows[i] = row{tl.Name, tl.RequiresApproval, tl.Description, tl.Parameters}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rows); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func names(tools []toolset.Tool) string {
	var out []string
	for _, tl := range tools {
		n := tl.Name
		if tl.RequiresApproval {
			n += "*"
		}
		out = append(out, n)
	}
	return strings.Join(out, " ")
}

func TestToolsGolden(t *testing.T) {
	golden(t, "tools/str_replace.json", toolsJSON(t, mustNew(t, newFake()).Tools()))
	golden(t, "tools/hashline.json", toolsJSON(t, mustNew(t, newFake(), hashline).Tools()))
}

// TestToolSchemasAreValidJSONSchemaObjects checks the parameters' shape without a golden file.
func TestToolSchemasAreValidJSONSchemaObjects(t *testing.T) {
	for _, opts := range [][]toolset.Option{nil, {hashline}} {
		for _, tl := range mustNew(t, newFake(), opts...).Tools() {
			var s struct {
				Type       string                     `json:"type"`
				Properties map[string]json.RawMessage `json:"properties"`
				Required   []string                   `json:"required"`
				Additional *bool                      `json:"additionalProperties"`
			}
			if err := json.Unmarshal(tl.Parameters, &s); err != nil {
				t.Fatalf("%s: %v", tl.Name, err)
			}
			if s.Type != "object" || s.Properties == nil || s.Additional == nil || *s.Additional {
				t.Errorf("%s: schema %s", tl.Name, tl.Parameters)
			}
			for _, r := range s.Required {
				if _, ok := s.Properties[r]; !ok {
					t.Errorf("%s: required %q is not a property", tl.Name, r)
				}
			}
			if !strings.HasPrefix(tl.Description, "<summary>") || !strings.HasSuffix(tl.Description, "</description>\n</returns>") {
				t.Errorf("%s: description not rendered as upstream: %q", tl.Name, tl.Description)
			}
		}
	}
}

func TestToolsetOptions(t *testing.T) {
	custom := &toolset.Ruleset{Default: toolset.Allow, Read: &toolset.OperationPermissions{Default: toolset.Deny}}
	askEditOnly := &toolset.Ruleset{Default: toolset.Allow, Edit: &toolset.OperationPermissions{Default: toolset.Ask}}
	tests := []struct {
		name string
		opts []toolset.Option
		want string // tool names, "*" marking RequiresApproval
	}{
		{"defaults", nil, "ls read_file write_file edit_file glob grep execute*"},
		{"hashline", []toolset.Option{hashline}, "ls read_file write_file hashline_edit glob grep execute*"},
		{"explicit_str_replace", []toolset.Option{toolset.WithEditFormat(toolset.EditFormatStrReplace)}, "ls read_file write_file edit_file glob grep execute*"},
		{"without_execute", []toolset.Option{toolset.WithExecute(false)}, "ls read_file write_file edit_file glob grep"},
		{"write_approval", []toolset.Option{toolset.WithWriteApproval(true)}, "ls read_file write_file* edit_file* glob grep execute*"},
		{"write_approval_hashline", []toolset.Option{toolset.WithWriteApproval(true), hashline}, "ls read_file write_file* hashline_edit* glob grep execute*"},
		{"no_execute_approval", []toolset.Option{toolset.WithExecuteApproval(false)}, "ls read_file write_file edit_file glob grep execute"},
		{"default_ruleset", []toolset.Option{toolset.WithPermissions(toolset.DefaultRuleset())}, "ls read_file write_file* edit_file* glob grep execute*"},
		{"permissive_ruleset_keeps_execute_approval_flag", []toolset.Option{toolset.WithPermissions(toolset.PermissiveRuleset())}, "ls read_file write_file edit_file glob grep execute*"},
		{"permissive_ruleset_no_approval", []toolset.Option{toolset.WithPermissions(toolset.PermissiveRuleset()), toolset.WithExecuteApproval(false)}, "ls read_file write_file edit_file glob grep execute"},
		{"readonly_ruleset", []toolset.Option{toolset.WithPermissions(toolset.ReadOnlyRuleset())}, "ls read_file glob grep"},
		{"readonly_ruleset_hashline", []toolset.Option{toolset.WithPermissions(toolset.ReadOnlyRuleset()), hashline}, "ls read_file glob grep"},
		{"strict_ruleset", []toolset.Option{toolset.WithPermissions(toolset.StrictRuleset())}, "ls* read_file* write_file* edit_file* glob* grep* execute*"},
		{"strict_ruleset_hashline", []toolset.Option{toolset.WithPermissions(toolset.StrictRuleset()), hashline}, "ls* read_file* write_file* hashline_edit* glob* grep* execute*"},
		{"read_denied_removes_read_file", []toolset.Option{toolset.WithPermissions(custom)}, "ls write_file edit_file glob grep execute*"},
		{"edit_ask_marks_edit_only", []toolset.Option{toolset.WithPermissions(askEditOnly)}, "ls read_file write_file edit_file* glob grep execute*"},
		{"global_default_deny", []toolset.Option{toolset.WithPermissions(&toolset.Ruleset{Default: toolset.Deny})}, ""},
		{"global_default_ask", []toolset.Option{toolset.WithPermissions(&toolset.Ruleset{Default: toolset.Ask}), toolset.WithExecute(false)}, "ls* read_file* write_file* edit_file* glob* grep*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := mustNew(t, newFake(), tt.opts...)
			if got := names(ts.Tools()); got != tt.want {
				t.Errorf("tools = %q, want %q", got, tt.want)
			}
			for _, tl := range ts.Tools() {
				if got, ok := ts.Tool(tl.Name); !ok || got.Name != tl.Name || got.RequiresApproval != tl.RequiresApproval {
					t.Errorf("Tool(%q) = %+v, %v", tl.Name, got, ok)
				}
			}
		})
	}
}

func TestSystemPrompt(t *testing.T) {
	const upstream = "## Console Tools\n\nYou have access to filesystem tools (ls, read_file, write_file, edit_file, glob, grep) and shell execution (execute). Read each tool's description for detailed usage guidance.\n"
	if toolset.SystemPrompt != upstream {
		t.Errorf("SystemPrompt = %q", toolset.SystemPrompt)
	}
	if got := mustNew(t, newFake()).SystemPrompt(); got != upstream {
		t.Errorf("str_replace SystemPrompt() = %q", got)
	}
	got := mustNew(t, newFake(), hashline).SystemPrompt()
	if got != toolset.HashlineSystemPrompt || !strings.Contains(got, "hashline_edit") || strings.Contains(got, "edit_file") {
		t.Errorf("hashline SystemPrompt() = %q", got)
	}
}

func TestDescriptionsOverride(t *testing.T) {
	ts := mustNew(t, newFake(), toolset.WithDescriptions(map[string]string{"ls": "LIST", "hashline_edit": "unused here"}))
	ls, _ := ts.Tool("ls")
	if ls.Description != "LIST" {
		t.Errorf("ls description = %q", ls.Description)
	}
	rf, _ := ts.Tool("read_file")
	if !strings.HasPrefix(rf.Description, "<summary>Read a file's contents, with line numbers.\n\n") {
		t.Errorf("read_file description = %q", rf.Description)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		sb   podsandbox.Sandbox
		opts []toolset.Option
		want string
	}{
		{"nil_sandbox", nil, nil, "nil sandbox"},
		{"unknown_description", newFake(), []toolset.Option{toolset.WithDescriptions(map[string]string{"lss": "x", "cat": "y", "ls": "ok"})}, `descriptions for unknown tools "cat", "lss"`},
		{"unknown_edit_format", newFake(), []toolset.Option{toolset.WithEditFormat("diff")}, `unknown edit format "diff"`},
		{"bad_ruleset_default", newFake(), []toolset.Option{toolset.WithPermissions(&toolset.Ruleset{})}, `ruleset default "" is not allow, ask or deny`},
		{"bad_operation_default", newFake(), []toolset.Option{toolset.WithPermissions(&toolset.Ruleset{Default: toolset.Allow, Grep: &toolset.OperationPermissions{Default: "maybe"}})}, `ruleset grep default "maybe"`},
		{"bad_rule_action", newFake(), []toolset.Option{toolset.WithPermissions(&toolset.Ruleset{Default: toolset.Allow, Write: &toolset.OperationPermissions{Rules: []toolset.Rule{{Pattern: "x", Action: "block"}}}})}, `action "block"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, err := toolset.New(tt.sb, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || ts != nil {
				t.Errorf("New() = %v, %v; want an error containing %q", ts, err, tt.want)
			}
		})
	}
}

func TestCallGoErrors(t *testing.T) {
	tests := []struct {
		name     string
		opts     []toolset.Option
		tool     string
		args     string
		want     error
		contains string
	}{
		{"unknown_tool", nil, "cat", `{}`, toolset.ErrUnknownTool, `unknown tool "cat"`},
		{"tool_of_other_format", nil, "hashline_edit", `{}`, toolset.ErrUnknownTool, "hashline_edit"},
		{"edit_file_in_hashline_format", []toolset.Option{hashline}, "edit_file", `{}`, toolset.ErrUnknownTool, "edit_file"},
		{"execute_excluded", []toolset.Option{toolset.WithExecute(false)}, "execute", `{"command": "ls"}`, toolset.ErrUnknownTool, "execute"},
		{"removed_by_ruleset", []toolset.Option{toolset.WithPermissions(toolset.ReadOnlyRuleset())}, "write_file", `{"path": "a", "content": "b"}`, toolset.ErrUnknownTool, "write_file"},
		{"malformed_json", nil, "ls", `{"path": `, toolset.ErrInvalidArguments, "ls: arguments are not valid JSON"},
		{"not_an_object", nil, "ls", `["."]`, toolset.ErrInvalidArguments, "ls: arguments must be a JSON object"},
		{"missing_required", nil, "read_file", `{}`, toolset.ErrInvalidArguments, "read_file: path: required"},
		{"null_required", nil, "write_file", `{"path": "a", "content": null}`, toolset.ErrInvalidArguments, "write_file: content: required"},
		{"wrong_type_string", nil, "read_file", `{"path": 7}`, toolset.ErrInvalidArguments, "read_file: path: must be a string"},
		{"wrong_type_int", nil, "read_file", `{"path": "a", "offset": "ten"}`, toolset.ErrInvalidArguments, "read_file: offset: must be an integer"},
		{"fractional_int", nil, "read_file", `{"path": "a", "limit": 2.5}`, toolset.ErrInvalidArguments, "read_file: limit: must be an integer"},
		{"wrong_type_bool", nil, "edit_file", `{"path": "a", "old_string": "x", "new_string": "y", "replace_all": "sometimes"}`, toolset.ErrInvalidArguments, "edit_file: replace_all: must be a boolean"},
		{"bad_enum", nil, "grep", `{"pattern": "x", "output_mode": "lines"}`, toolset.ErrInvalidArguments, `grep: output_mode: must be one of "content", "files_with_matches", "count"`},
		{"bad_timeout", nil, "execute", `{"command": "ls", "timeout": "soon"}`, toolset.ErrInvalidArguments, "execute: timeout: must be a number"},
		{"hashline_missing_hash", []toolset.Option{hashline}, "hashline_edit", `{"path": "a", "start_line": 1, "new_content": ""}`, toolset.ErrInvalidArguments, "hashline_edit: start_hash: required"},
		{"hashline_bad_end_line", []toolset.Option{hashline}, "hashline_edit", `{"path": "a", "start_line": 1, "start_hash": "00", "new_content": "", "end_line": true}`, toolset.ErrInvalidArguments, "hashline_edit: end_line: must be an integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			ts := mustNew(t, f, tt.opts...)
			out, err := ts.Call(t.Context(), tt.tool, []byte(tt.args))
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.contains) || out != "" {
				t.Errorf("Call = %q, %v; want %v containing %q", out, err, tt.want, tt.contains)
			}
			var ae *toolset.ArgumentError
			if errors.Is(err, toolset.ErrInvalidArguments) != errors.As(err, &ae) {
				t.Errorf("ErrInvalidArguments without *ArgumentError: %v", err)
			}
			if len(f.callLog()) != 0 {
				t.Errorf("a rejected call reached the sandbox: %v", f.callLog())
			}
		})
	}
}

// allCalls is one valid call of every tool.
var allCalls = []struct{ tool, args string }{
	{"ls", `{}`},
	{"read_file", `{"path": "a.txt"}`},
	{"write_file", `{"path": "a.txt", "content": "x"}`},
	{"edit_file", `{"path": "a.txt", "old_string": "hello", "new_string": "bye"}`},
	{"glob", `{"pattern": "*"}`},
	{"grep", `{"pattern": "x"}`},
	{"execute", `{"command": "ls"}`},
}

func TestCallUnavailableSandboxIsAGoError(t *testing.T) {
	for _, sentinel := range []error{podsandbox.ErrSandboxGone, podsandbox.ErrStopped, podsandbox.ErrNotStarted, podsandbox.ErrUnauthorized, &podsandbox.StartupError{Pod: "p", Reason: "Timeout"}} {
		calls := append(allCalls[:len(allCalls):len(allCalls)], struct{ tool, args string }{"hashline_edit", `{"path": "a.txt", "start_line": 1, "start_hash": "00", "new_content": ""}`})
		for _, c := range calls {
			t.Run(fmt.Sprintf("%s/%v", c.tool, sentinel), func(t *testing.T) {
				f := newFake().put("a.txt", "hello\n")
				f.fail = func(string, string) error { return &podsandbox.PathError{Op: "x", Path: "a.txt", Err: sentinel} }
				var opts []toolset.Option
				if c.tool == "hashline_edit" {
					opts = append(opts, hashline)
				}
				out, err := mustNew(t, f, opts...).Call(t.Context(), c.tool, []byte(c.args))
				if !errors.Is(err, sentinel) || out != "" {
					t.Errorf("Call = %q, %v; want an error matching %v", out, err, sentinel)
				}
			})
		}
	}
}

func TestCallCancelledIsAGoError(t *testing.T) {
	for _, c := range allCalls {
		t.Run(c.tool, func(t *testing.T) {
			f := newFake().put("a.txt", "hello\n")
			ctx, cancel := context.WithCancel(t.Context())
			f.fail = func(string, string) error { cancel(); return fmt.Errorf("exec: %w", context.Canceled) }
			out, err := mustNew(t, f).Call(ctx, c.tool, []byte(c.args))
			if !errors.Is(err, context.Canceled) || out != "" {
				t.Errorf("Call = %q, %v; want context.Canceled", out, err)
			}
		})
	}
	t.Run("cancelled_while_waiting_for_path_lock", func(t *testing.T) {
		f := newFake().put("a.txt", "hello\n")
		ts := mustNew(t, f)
		release := make(chan struct{})
		entered := make(chan struct{})
		var once sync.Once
		f.fail = func(op, _ string) error {
			if op == "Write" {
				once.Do(func() { close(entered) })
				<-release
			}
			return nil
		}
		done := make(chan error, 1)
		go func() {
			_, err := ts.Call(context.Background(), "write_file", []byte(`{"path": "a.txt", "content": "1"}`))
			done <- err
		}()
		<-entered
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := ts.Call(ctx, "write_file", []byte(`{"path": "a.txt", "content": "2"}`))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("second write = %v, want context.Canceled", err)
		}
		close(release)
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// TestConcurrentCalls runs many calls at once (for -race) and checks that edits to one file
// are serialized: every one of them lands.
func TestConcurrentCalls(t *testing.T) {
	f := newFake().put("counter.txt", "")
	ts := mustNew(t, f)
	ctx := t.Context()
	const n = 20
	for i := range n {
		f.put(fmt.Sprintf("f%d.txt", i), fmt.Sprintf("value %d\n", i))
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := fmt.Sprintf("f%d.txt", i)
			for _, c := range []struct{ tool, args string }{
				{"read_file", fmt.Sprintf(`{"path": %q}`, p)},
				{"edit_file", fmt.Sprintf(`{"path": %q, "old_string": "value", "new_string": "v"}`, p)},
				{"write_file", fmt.Sprintf(`{"path": "shared.txt", "content": "writer %d"}`, i)},
				{"grep", `{"pattern": "v"}`},
				{"ls", `{}`},
			} {
				if _, err := ts.Call(ctx, c.tool, []byte(c.args)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for i := range n {
		if got, _ := f.content(fmt.Sprintf("f%d.txt", i)); got != fmt.Sprintf("v %d\n", i) {
			t.Errorf("f%d.txt = %q", i, got)
		}
	}
}

// TestReadFileFingerprintsBeforeReading pins the order: the bytes are fetched before the text,
// so a change in between makes the next edit refuse rather than pass.
func TestReadFileFingerprintsBeforeReading(t *testing.T) {
	f := newFake().put("a.txt", "one\n")
	ts := mustNew(t, f)
	ctx := t.Context()
	f.fail = func(op, _ string) error {
		if op == "Read" {
			f.files["/workspace/a.txt"] = []byte("two\n") // f.mu is held by Read
		}
		return nil
	}
	if out, err := ts.Call(ctx, "read_file", []byte(`{"path": "a.txt"}`)); err != nil || out != "     1\ttwo" {
		t.Fatalf("read = %q, %v", out, err)
	}
	f.fail = nil
	out, err := ts.Call(ctx, "edit_file", []byte(`{"path": "a.txt", "old_string": "two", "new_string": "2"}`))
	if err != nil || !strings.Contains(out, "changed since you last read it") {
		t.Fatalf("edit = %q, %v; want the staleness error", out, err)
	}
	if got := strings.Join(f.callLog()[:2], ", "); got != "ReadBytes a.txt, Read a.txt" {
		t.Errorf("calls = %s", got)
	}
}

// TestReadFileWithoutBytesIsUnguarded: when the bytes cannot be fetched the text is still
// returned and the path is not guarded (an old fingerprint is dropped).
func TestReadFileWithoutBytesIsUnguarded(t *testing.T) {
	f := newFake().put("a.txt", "one\n")
	ts := mustNew(t, f)
	ctx := t.Context()
	if _, err := ts.Call(ctx, "read_file", []byte(`{"path": "a.txt"}`)); err != nil {
		t.Fatal(err)
	}
	f.fail = func(op, _ string) error {
		if op == "ReadBytes" {
			return errors.New("base64: broken pipe")
		}
		return nil
	}
	f.put("a.txt", "uno\n")
	if out, err := ts.Call(ctx, "read_file", []byte(`{"path": "a.txt"}`)); err != nil || out != "     1\tuno" {
		t.Fatalf("read = %q, %v", out, err)
	}
	f.fail = nil
	f.put("a.txt", "eins\n")
	out, err := ts.Call(ctx, "edit_file", []byte(`{"path": "a.txt", "old_string": "eins", "new_string": "1"}`))
	if err != nil || out != "Edited a.txt: replaced 1 occurrence(s)" {
		t.Fatalf("edit = %q, %v", out, err)
	}
}

func TestToolsReturnsCopies(t *testing.T) {
	ts := mustNew(t, newFake())
	tools := ts.Tools()
	tools[0].Parameters[0] = 'X'
	tools[0].Name = "changed"
	if again := ts.Tools(); again[0].Name != "ls" || again[0].Parameters[0] != '{' {
		t.Error("Tools() shares state with its caller")
	}
}

func TestCallResult(t *testing.T) {
	f := newFake().put("a.txt", "x\n")
	ts := mustNew(t, f, toolset.WithExecute(false))
	tests := []struct {
		tool, args string
		want       string
		isError    bool
	}{
		{"read_file", `{"path": "a.txt"}`, "     1\tx", false},
		{"read_file", `{"path": "b.txt"}`, "Error: File 'b.txt' not found", false},
		{"execute", `{"command": "ls"}`, "Error: Unknown tool name: 'execute'. Available tools: 'ls', 'read_file', 'write_file', 'edit_file', 'glob', 'grep'", true},
		{"read_file", `{"path": 1}`, "Error: Invalid arguments for read_file: path: must be a string. Fix the arguments and try again.", true},
		{"ls", `not json`, "Error: Invalid arguments for ls: arguments must be a JSON object. Fix the arguments and try again.", true},
	}
	for _, tt := range tests {
		got, isError, err := ts.CallResult(t.Context(), tt.tool, []byte(tt.args))
		if err != nil || got != tt.want || isError != tt.isError {
			t.Errorf("CallResult(%s, %s) = %q, %v, %v; want %q, %v", tt.tool, tt.args, got, isError, err, tt.want, tt.isError)
		}
	}
	f.fail = func(string, string) error { return podsandbox.ErrSandboxGone }
	if _, _, err := ts.CallResult(t.Context(), "ls", nil); !errors.Is(err, podsandbox.ErrSandboxGone) {
		t.Errorf("CallResult on a gone sandbox: %v", err)
	}
}

// withWorkDir is a sandbox that reports its work dir, as *podsandbox.KubernetesPodSandbox does.
type withWorkDir struct {
	*fakeSandbox
	dir string
}

func (w withWorkDir) WorkDir() string { return w.dir }

func TestWorkDirFromSandbox(t *testing.T) {
	rules := &toolset.Ruleset{
		Default: toolset.Allow,
		Read:    &toolset.OperationPermissions{Rules: []toolset.Rule{{Pattern: "/workspace/private/**", Action: toolset.Deny, Description: "Private"}}},
	}
	f := newFake().put("private/notes.txt", "x\n")
	call := func(ts *toolset.Toolset) string {
		out, err := ts.Call(t.Context(), "read_file", []byte(`{"path": "private/notes.txt"}`))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := call(mustNew(t, withWorkDir{f, "/workspace"}, toolset.WithPermissions(rules))); got != "Error: Permission denied: Private" {
		t.Errorf("with the sandbox's work dir: %q", got)
	}
	if got := call(mustNew(t, withWorkDir{f, "/workspace"}, toolset.WithPermissions(rules), toolset.WithWorkDir("/elsewhere"))); got != "     1\tx" {
		t.Errorf("WithWorkDir overriding it: %q", got)
	}
}

func TestFileTooLargeOfUnknownSize(t *testing.T) {
	f := newFake().put("a.txt", "x")
	f.fail = func(op, _ string) error {
		return &podsandbox.FileTooLargeError{Path: "/workspace/a.txt", Size: -1, Limit: 100}
	}
	out, err := mustNew(t, f).Call(t.Context(), "read_file", []byte(`{"path": "a.txt"}`))
	if err != nil || out != "Error: File 'a.txt' is too large (limit 100 bytes)" {
		t.Errorf("Call = %q, %v", out, err)
	}
}

// oneFetch is the fake with podsandbox.TextBytesReader, as KubernetesPodSandbox has.
type oneFetch struct {
	*fakeSandbox
	calls int
}

func (o *oneFetch) ReadWithBytes(ctx context.Context, p string, offset, limit int) (string, []byte, error) {
	o.calls++
	data, err := o.fakeSandbox.ReadBytes(ctx, p)
	if err != nil {
		return "", nil, err
	}
	text, err := o.fakeSandbox.Read(ctx, p, offset, limit)
	return text, data, err
}

// TestReadFileOneFetch: with a TextBytesReader, read_file makes one call, shows the same text, and
// the staleness guard still refuses an edit after the file changed behind the model's back.
func TestReadFileOneFetch(t *testing.T) {
	f := newFake().put("a.txt", "one\ntwo\n")
	o := &oneFetch{fakeSandbox: f}
	ts := mustNew(t, o)
	ctx := t.Context()
	out, err := ts.Call(ctx, "read_file", []byte(`{"path": "a.txt", "offset": 1}`))
	if err != nil || out != "     2\ttwo" || o.calls != 1 {
		t.Fatalf("read = %q, %v after %d calls", out, err, o.calls)
	}
	if out, err := ts.Call(ctx, "edit_file", []byte(`{"path": "a.txt", "old_string": "two", "new_string": "2"}`)); err != nil || !strings.HasPrefix(out, "Edited ") {
		t.Fatalf("edit after a read = %q, %v", out, err)
	}
	f.put("a.txt", "changed\n")
	if out, _ := ts.Call(ctx, "edit_file", []byte(`{"path": "a.txt", "old_string": "changed", "new_string": "x"}`)); !strings.Contains(out, "changed since you last read it") {
		t.Fatalf("edit after an outside change = %q, want the staleness error", out)
	}
	if out, _ := ts.Call(ctx, "read_file", []byte(`{"path": "missing.txt"}`)); out != "Error: File 'missing.txt' not found" {
		t.Errorf("missing = %q", out)
	}
}
