package anthropictools_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/adapters/anthropictools"
	"github.com/podsandbox/podsandbox/adapters/internal/fakesandbox"
	"github.com/podsandbox/podsandbox/toolset"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// fixture unmarshals a recorded API response into v, as the SDK does with a response body.
func fixture(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// golden compares v, marshalled as the SDK sends it and indented, with testdata/<name>.
func golden(t *testing.T, name string, v any) {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	b.WriteByte('\n')
	file := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("%s differs:\n%s", file, b.String())
	}
}

func newToolset(t *testing.T, sb podsandbox.Sandbox, opts ...toolset.Option) *toolset.Toolset {
	t.Helper()
	ts, err := toolset.New(sb, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestTools(t *testing.T) {
	ts := newToolset(t, fakesandbox.New(), toolset.WithEditFormat(toolset.EditFormatHashline))
	tools := anthropictools.Tools(ts.Tools())
	golden(t, "tools_hashline.golden.json", tools)

	// What the API receives for each tool is the toolset's schema, property order included.
	for i, tool := range ts.Tools() {
		raw, err := json.Marshal(tools[i].OfTool.InputSchema)
		if err != nil {
			t.Fatal(err)
		}
		var got, want map[string]json.RawMessage
		_ = json.Unmarshal(raw, &got)
		_ = json.Unmarshal(tool.Parameters, &want)
		if len(got) != len(want) {
			t.Errorf("%s: schema keys %d, want %d", tool.Name, len(got), len(want))
		}
		for k, v := range want {
			if !bytes.Equal(got[k], v) {
				t.Errorf("%s: %s = %s, want %s", tool.Name, k, got[k], v)
			}
		}
	}
}

func TestDispatch(t *testing.T) {
	sb := fakesandbox.New().Put("greet.py", "def greet(name):\n    return f\"Helo, {name}!\"\n")
	sb.Commands["python3 -m pytest -q"] = podsandbox.ExecuteResponse{Output: "...                                      [100%]\n3 passed in 0.04s\n"}
	ts := newToolset(t, sb)

	var msg anthropic.Message
	fixture(t, "message_tool_use.json", &msg)
	reply, ok, err := anthropictools.Dispatch(t.Context(), ts, &msg)
	if err != nil || !ok {
		t.Fatalf("Dispatch = %v, %v", ok, err)
	}
	golden(t, "tool_results.golden.json", reply)

	if got, _ := sb.File("greet.py"); got != "def greet(name):\n    return f\"Hello, {name}!\"\n" {
		t.Errorf("greet.py = %q", got)
	}
	if !slices.Equal(sb.Executed, []string{"python3 -m pytest -q", "touch .done"}) {
		t.Errorf("executed %q", sb.Executed)
	}

	// The next request: the assistant turn, then the user turn with its tool results.
	next := anthropic.MessageNewParams{
		Model:     msg.Model,
		MaxTokens: 4096,
		System:    []anthropic.TextBlockParam{{Text: ts.SystemPrompt()}},
		Messages: []anthropic.MessageParam{
			anthropic.NewUserMessage(anthropic.NewTextBlock("Fix the greeting typo and run the tests.")),
			msg.ToParam(),
			reply,
		},
		Tools: anthropictools.Tools(ts.Tools()),
	}
	golden(t, "next_request.golden.json", next)
}

func TestDispatchEndTurn(t *testing.T) {
	var msg anthropic.Message
	fixture(t, "message_end_turn.json", &msg)
	reply, ok, err := anthropictools.Dispatch(t.Context(), newToolset(t, fakesandbox.New()), &msg)
	if err != nil || ok || reply.OfUser != nil {
		t.Errorf("Dispatch = %+v, %v, %v; want nothing", reply, ok, err)
	}
}

func TestApprover(t *testing.T) {
	sb := fakesandbox.New().Put("greet.py", "Helo\n")
	ts := newToolset(t, sb)
	var msg anthropic.Message
	fixture(t, "message_tool_use.json", &msg)

	var asked []string
	approve := func(_ context.Context, tool toolset.Tool, args []byte) (bool, error) {
		asked = append(asked, tool.Name+" "+string(args))
		return tool.Name == "execute" && string(args) == `{"command": "touch .done"}`, nil
	}
	results, err := anthropictools.Results(t.Context(), ts, &msg, anthropictools.WithApprover(approve))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{`execute {"command": "python3 -m pytest -q", "timeout": 300}`, `execute {"command": "touch .done"}`}; !slices.Equal(asked, want) {
		t.Errorf("asked %q, want %q", asked, want)
	}
	if !slices.Equal(sb.Executed, []string{"touch .done"}) {
		t.Errorf("executed %q", sb.Executed)
	}
	denied := results[2].OfToolResult
	if denied.ToolUseID != "toolu_01C3dE5fG7hJ9kL1mN3pQ5rS" || denied.Content[0].OfText.Text != anthropictools.Denied || denied.IsError.Valid() {
		t.Errorf("denied result = %+v", denied)
	}

	boom := errors.New("approval service down")
	failing := func(context.Context, toolset.Tool, []byte) (bool, error) { return false, boom }
	if _, err := anthropictools.Results(t.Context(), ts, &msg, anthropictools.WithApprover(failing)); !errors.Is(err, boom) {
		t.Errorf("failing approver: %v", err)
	}
}

func TestDispatchStopsOnUnusableSandbox(t *testing.T) {
	sb := fakesandbox.New()
	sb.Err = &podsandbox.PathError{Op: "read", Path: "greet.py", Err: podsandbox.ErrSandboxGone}
	var msg anthropic.Message
	fixture(t, "message_tool_use.json", &msg)
	reply, ok, err := anthropictools.Dispatch(t.Context(), newToolset(t, sb), &msg)
	if !errors.Is(err, podsandbox.ErrSandboxGone) || ok || reply.OfUser != nil {
		t.Errorf("Dispatch = %+v, %v, %v; want ErrSandboxGone", reply, ok, err)
	}
}

func TestCallCancelled(t *testing.T) {
	sb := fakesandbox.New()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	sb.Err = context.Canceled
	_, err := anthropictools.Call(ctx, newToolset(t, sb), anthropic.ToolUseBlock{ID: "toolu_x", Name: "ls", Input: json.RawMessage(`{}`)})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Call = %v, want context.Canceled", err)
	}
}
