package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/podsandbox/podsandbox/toolset"
)

func TestScripted(t *testing.T) {
	ctx := context.Background()
	m := Scripted{Path: TaskPath, Content: TaskContent}
	history := []Message{{Role: RoleUser, Text: Task}}

	step := func(result string) Message {
		t.Helper()
		reply, err := m.Next(ctx, history)
		if err != nil {
			t.Fatal(err)
		}
		history = append(history, reply)
		if len(reply.ToolCalls) == 1 {
			history = append(history, Message{Role: RoleTool, Results: []ToolResult{{CallID: reply.ToolCalls[0].ID, Content: result}}})
		}
		return reply
	}
	if r := step("Wrote 1 lines to /workspace/hello.txt"); len(r.ToolCalls) != 1 || r.ToolCalls[0].Name != "write_file" ||
		string(r.ToolCalls[0].Arguments) != `{"path":"/workspace/hello.txt","content":"hello world\n"}` {
		t.Fatalf("turn 1: %+v", r)
	}
	if r := step("     1\thello world"); len(r.ToolCalls) != 1 || r.ToolCalls[0].Name != "read_file" ||
		string(r.ToolCalls[0].Arguments) != `{"path":"/workspace/hello.txt"}` {
		t.Fatalf("turn 2: %+v", r)
	}
	if r := step(""); len(r.ToolCalls) != 0 || r.Text != "I created /workspace/hello.txt and read it back. It contains: hello world" {
		t.Fatalf("turn 3: %+v", r)
	}
}

func TestScriptedWriteFails(t *testing.T) {
	m := Scripted{Path: TaskPath, Content: TaskContent}
	history := []Message{
		{Role: RoleUser, Text: Task},
		{Role: RoleAssistant, ToolCalls: []ToolCall{{ID: "call_1", Name: "write_file"}}},
		{Role: RoleTool, Results: []ToolResult{{CallID: "call_1", Content: "Error: Permission denied: no"}}},
	}
	r, err := m.Next(context.Background(), history)
	if err != nil || len(r.ToolCalls) != 0 || !strings.Contains(r.Text, "Error: Permission denied") {
		t.Fatalf("%+v %v", r, err)
	}
}

func TestChooseModel(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	tests := []struct {
		kind     string
		getenv   func(string) string
		provider string
		err      string
	}{
		{"auto", nil, "scripted", ""},
		{"auto", env(), "scripted", ""},
		{"auto", env("OPENAI_API_KEY", "o"), "openai", ""},
		{"auto", env("OPENAI_API_KEY", "o", "ANTHROPIC_API_KEY", "a"), "anthropic", ""},
		{"scripted", env("ANTHROPIC_API_KEY", "a"), "scripted", ""},
		{"anthropic", env(), "", "ANTHROPIC_API_KEY is not set"},
		{"openai", env("ANTHROPIC_API_KEY", "a"), "", "OPENAI_API_KEY is not set"},
		{"gemini", env(), "", "want auto, scripted"},
	}
	for _, tt := range tests {
		c, err := chooseModel(tt.kind, tt.getenv)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err %v, want %q", tt.kind, err, tt.err)
			}
			continue
		}
		if err != nil || c.Provider != tt.provider {
			t.Errorf("%s: %+v %v, want %s", tt.kind, c, err, tt.provider)
		}
	}
	c, _ := chooseModel("auto", env("ANTHROPIC_API_KEY", "a", "ANTHROPIC_MODEL", "claude-x", "ANTHROPIC_BASE_URL", "http://127.0.0.1:1"))
	if c.Name != "claude-x" || c.BaseURL != "http://127.0.0.1:1" || c.Key != "a" {
		t.Errorf("env overrides: %+v", c)
	}
}

var testTools = []toolset.Tool{{Name: "read_file", Description: "Read a file.", Parameters: json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}`)}}

// history after one tool round trip, as the agent loop builds it.
var testHistory = []Message{
	{Role: RoleUser, Text: "read a"},
	{Role: RoleAssistant, Text: "Reading.", ToolCalls: []ToolCall{{ID: "t1", Name: "read_file", Arguments: json.RawMessage(`{"path":"a"}`)}}},
	{Role: RoleTool, Results: []ToolResult{{CallID: "t1", Name: "read_file", Content: "Error: File 'a' not found", IsError: false}}},
}

// fakeAPI serves one canned answer and records the request.
func fakeAPI(t *testing.T, status int, answer string, got *map[string]any, header *http.Header) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, got); err != nil {
			t.Errorf("request body: %v: %s", err, body)
		}
		*header = r.Header.Clone()
		(*header).Set("X-Path", r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAnthropicWire(t *testing.T) {
	var req map[string]any
	var h http.Header
	srv := fakeAPI(t, 200, `{"content":[{"type":"text","text":"Let me write it."},{"type":"tool_use","id":"tu_2","name":"write_file","input":{"path":"a","content":"b"}}],"stop_reason":"tool_use"}`, &req, &h)
	m := &Anthropic{Key: "k", Model: "claude-x", BaseURL: srv.URL, System: "sys", Tools: testTools}
	reply, err := m.Next(context.Background(), testHistory)
	if err != nil {
		t.Fatal(err)
	}
	if h.Get("X-Path") != "/v1/messages" || h.Get("x-api-key") != "k" || h.Get("anthropic-version") != "2023-06-01" {
		t.Errorf("headers: %v", h)
	}
	want := `{"max_tokens":2048,"messages":[` +
		`{"content":[{"text":"read a","type":"text"}],"role":"user"},` +
		`{"content":[{"text":"Reading.","type":"text"},{"id":"t1","input":{"path":"a"},"name":"read_file","type":"tool_use"}],"role":"assistant"},` +
		`{"content":[{"content":"Error: File 'a' not found","tool_use_id":"t1","type":"tool_result"}],"role":"user"}],` +
		`"model":"claude-x","system":"sys","tools":[{"description":"Read a file.","input_schema":{"properties":{"path":{"type":"string"}},"required":["path"],"type":"object"},"name":"read_file"}]}`
	if got := jsonOf(t, req); got != want {
		t.Errorf("request:\n got %s\nwant %s", got, want)
	}
	if reply.Text != "Let me write it." || len(reply.ToolCalls) != 1 || reply.ToolCalls[0].ID != "tu_2" ||
		reply.ToolCalls[0].Name != "write_file" || string(reply.ToolCalls[0].Arguments) != `{"path":"a","content":"b"}` {
		t.Errorf("reply: %+v", reply)
	}
}

func TestOpenAIWire(t *testing.T) {
	var req map[string]any
	var h http.Header
	srv := fakeAPI(t, 200, `{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c2","type":"function","function":{"name":"ls","arguments":""}}]}}]}`, &req, &h)
	m := &OpenAI{Key: "k", Model: "gpt-x", BaseURL: srv.URL + "/v1", System: "sys", Tools: testTools}
	reply, err := m.Next(context.Background(), testHistory)
	if err != nil {
		t.Fatal(err)
	}
	if h.Get("X-Path") != "/v1/chat/completions" || h.Get("Authorization") != "Bearer k" {
		t.Errorf("headers: %v", h)
	}
	want := `{"messages":[` +
		`{"content":"sys","role":"system"},` +
		`{"content":"read a","role":"user"},` +
		`{"content":"Reading.","role":"assistant","tool_calls":[{"function":{"arguments":"{\"path\":\"a\"}","name":"read_file"},"id":"t1","type":"function"}]},` +
		`{"content":"Error: File 'a' not found","role":"tool","tool_call_id":"t1"}],` +
		`"model":"gpt-x","tools":[{"function":{"description":"Read a file.","name":"read_file","parameters":{"properties":{"path":{"type":"string"}},"required":["path"],"type":"object"}},"type":"function"}]}`
	if got := jsonOf(t, req); got != want {
		t.Errorf("request:\n got %s\nwant %s", got, want)
	}
	if reply.Text != "" || len(reply.ToolCalls) != 1 || reply.ToolCalls[0].Name != "ls" || string(reply.ToolCalls[0].Arguments) != "{}" {
		t.Errorf("reply: %+v", reply)
	}
}

func TestAPIErrorMessage(t *testing.T) {
	var req map[string]any
	var h http.Header
	srv := fakeAPI(t, 401, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`, &req, &h)
	_, err := (&Anthropic{Key: "bad", Model: "m", BaseURL: srv.URL}).Next(context.Background(), testHistory[:1])
	if err == nil || err.Error() != "anthropic: 401 Unauthorized: invalid x-api-key" {
		t.Errorf("err = %v", err)
	}
}
