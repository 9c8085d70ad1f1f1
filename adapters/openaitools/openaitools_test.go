package openaitools_test

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

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/adapters/internal/fakesandbox"
	"github.com/podsandbox/podsandbox/adapters/openaitools"
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
	ts := newToolset(t, fakesandbox.New())
	tools := openaitools.Tools(ts.Tools())
	golden(t, "chat_tools.golden.json", tools)
	if len(tools) != 7 || tools[1].GetFunction().Name != "read_file" {
		t.Fatalf("tools: %d, second %q", len(tools), tools[1].GetFunction().Name)
	}
	// The parameters keep the toolset's schema, property order included.
	raw, _ := json.Marshal(tools[1].GetFunction().Parameters["properties"])
	var want struct {
		Properties json.RawMessage `json:"properties"`
	}
	_ = json.Unmarshal(ts.Tools()[1].Parameters, &want)
	if !bytes.Equal(raw, want.Properties) {
		t.Errorf("properties = %s, want %s", raw, want.Properties)
	}
	golden(t, "responses_tools.golden.json", openaitools.ResponsesTools(ts.Tools()))
}

func TestDispatchChatCompletion(t *testing.T) {
	sb := fakesandbox.New()
	sb.Commands["python3 hello.py"] = podsandbox.ExecuteResponse{Output: "hello from the sandbox\n"}
	sb.Commands["python3 missing.py"] = podsandbox.ExecuteResponse{Output: "python3: can't open file '/workspace/missing.py': [Errno 2] No such file or directory\n", ExitCode: 2}
	ts := newToolset(t, sb)

	var completion openai.ChatCompletion
	fixture(t, "chat_completion_tool_calls.json", &completion)
	msg := completion.Choices[0].Message
	results, err := openaitools.Dispatch(t.Context(), ts, msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(msg.ToolCalls) {
		t.Fatalf("%d results for %d calls", len(results), len(msg.ToolCalls))
	}
	golden(t, "chat_tool_messages.golden.json", results)

	if got, _ := sb.File("hello.py"); got != "print('hello from the sandbox')\n" {
		t.Errorf("hello.py = %q", got)
	}
	if !slices.Equal(sb.Executed, []string{"python3 hello.py", "python3 missing.py"}) {
		t.Errorf("executed %q", sb.Executed)
	}

	// The next request: the assistant turn, then its tool results.
	next := openai.ChatCompletionNewParams{
		Model: completion.Model,
		Messages: append([]openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage(ts.SystemPrompt()),
			openai.UserMessage("Write hello.py and run it."),
			msg.ToParam(),
		}, results...),
		Tools: openaitools.Tools(ts.Tools()),
	}
	golden(t, "chat_next_request.golden.json", next)
}

func TestDispatchWithoutToolCalls(t *testing.T) {
	var completion openai.ChatCompletion
	fixture(t, "chat_completion_text.json", &completion)
	results, err := openaitools.Dispatch(t.Context(), newToolset(t, fakesandbox.New()), completion.Choices[0].Message)
	if err != nil || results != nil {
		t.Errorf("Dispatch = %v, %v; want nothing", results, err)
	}
}

func TestDispatchResponse(t *testing.T) {
	sb := fakesandbox.New().Put("main.go", "package main\n\n// TODO: flags\nfunc main() {}\n").Put("internal/x/x.go", "package x // TODO\n")
	ts := newToolset(t, sb)
	var resp responses.Response
	fixture(t, "response_function_calls.json", &resp)

	var asked []string
	approve := func(_ context.Context, tool toolset.Tool, args []byte) (bool, error) {
		asked = append(asked, tool.Name+" "+string(args))
		return false, nil
	}
	outputs, err := openaitools.DispatchResponse(t.Context(), ts, &resp, openaitools.WithApprover(approve))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "responses_outputs.golden.json", outputs)
	if !slices.Equal(asked, []string{`execute {"command":"rm -rf /tmp/cache"}`}) {
		t.Errorf("approver asked for %q", asked)
	}
	if len(sb.Executed) != 0 {
		t.Errorf("a denied command ran: %q", sb.Executed)
	}

	next := responses.ResponseNewParams{
		Model:              resp.Model,
		PreviousResponseID: openai.String(resp.ID),
		Input:              responses.ResponseNewParamsInputUnion{OfInputItemList: outputs},
		Tools:              openaitools.ResponsesTools(ts.Tools()),
	}
	golden(t, "responses_next_request.golden.json", next)
}

func TestApprovedCallRuns(t *testing.T) {
	sb := fakesandbox.New()
	sb.Commands["ls"] = podsandbox.ExecuteResponse{Output: "a\n"}
	ts := newToolset(t, sb)
	var completion openai.ChatCompletion
	if err := json.Unmarshal([]byte(`{"choices":[{"message":{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"execute","arguments":"{\"command\":\"ls\"}"}}]}}]}`), &completion); err != nil {
		t.Fatal(err)
	}
	yes := func(context.Context, toolset.Tool, []byte) (bool, error) { return true, nil }
	results, err := openaitools.Dispatch(t.Context(), ts, completion.Choices[0].Message, openaitools.WithApprover(yes))
	if err != nil || len(results) != 1 || results[0].OfTool.Content.OfString.Value != "a\n" {
		t.Fatalf("Dispatch = %+v, %v", results, err)
	}
	boom := errors.New("approval service down")
	no := func(context.Context, toolset.Tool, []byte) (bool, error) { return false, boom }
	if _, err := openaitools.Dispatch(t.Context(), ts, completion.Choices[0].Message, openaitools.WithApprover(no)); !errors.Is(err, boom) {
		t.Errorf("failing approver: %v", err)
	}
}

func TestDispatchStopsOnUnusableSandbox(t *testing.T) {
	sb := fakesandbox.New()
	sb.Err = &podsandbox.PathError{Op: "write", Path: "hello.py", Err: podsandbox.ErrSandboxGone}
	var completion openai.ChatCompletion
	fixture(t, "chat_completion_tool_calls.json", &completion)
	results, err := openaitools.Dispatch(t.Context(), newToolset(t, sb), completion.Choices[0].Message)
	if !errors.Is(err, podsandbox.ErrSandboxGone) || results != nil {
		t.Errorf("Dispatch = %v, %v; want ErrSandboxGone", results, err)
	}
	var resp responses.Response
	fixture(t, "response_function_calls.json", &resp)
	outputs, err := openaitools.DispatchResponse(t.Context(), newToolset(t, sb), &resp)
	if !errors.Is(err, podsandbox.ErrSandboxGone) || outputs != nil {
		t.Errorf("DispatchResponse = %v, %v; want ErrSandboxGone", outputs, err)
	}
}

func TestCustomToolCallIsUnknown(t *testing.T) {
	var completion openai.ChatCompletion
	if err := json.Unmarshal([]byte(`{"choices":[{"message":{"role":"assistant","tool_calls":[{"id":"call_c","type":"custom","custom":{"name":"apply_patch","input":"*** Begin Patch"}}]}}]}`), &completion); err != nil {
		t.Fatal(err)
	}
	results, err := openaitools.Dispatch(t.Context(), newToolset(t, fakesandbox.New()), completion.Choices[0].Message)
	if err != nil || len(results) != 1 {
		t.Fatalf("Dispatch = %v, %v", results, err)
	}
	const want = "Error: Unknown tool name: 'apply_patch'. Available tools: 'ls', 'read_file', 'write_file', 'edit_file', 'glob', 'grep', 'execute'"
	if got := results[0].OfTool.Content.OfString.Value; got != want || results[0].OfTool.ToolCallID != "call_c" {
		t.Errorf("result = %q for %q", got, results[0].OfTool.ToolCallID)
	}
}
