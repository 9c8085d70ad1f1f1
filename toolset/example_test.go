package toolset_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/podsandbox/podsandbox/toolset"
)

// The examples run on an in-memory fake; with a real sandbox, pass a *podsandbox.KubernetesPodSandbox
// (or any podsandbox.Sandbox) to New instead.

func ExampleToolset_Tools() {
	sb := newFake()
	ts, err := toolset.New(sb)
	if err != nil {
		panic(err)
	}
	for _, tool := range ts.Tools() {
		// Register tool.Name, tool.Description and tool.Parameters (a JSON Schema) with the model.
		fmt.Printf("%s approval=%v\n", tool.Name, tool.RequiresApproval)
	}
	// Output:
	// ls approval=false
	// read_file approval=false
	// write_file approval=false
	// edit_file approval=false
	// glob approval=false
	// grep approval=false
	// execute approval=true
}

func ExampleToolset_Call() {
	sb := newFake()
	ts, err := toolset.New(sb)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for _, call := range []struct{ name, args string }{
		{"write_file", `{"path": "hello.py", "content": "print('hello')\n"}`},
		{"read_file", `{"path": "hello.py"}`},
		{"edit_file", `{"path": "hello.py", "old_string": "hello", "new_string": "world"}`},
		{"read_file", `{"path": "missing.py"}`},
		{"glob", `{"pattern": "*.py"}`},
	} {
		out, err := ts.Call(ctx, call.name, []byte(call.args))
		if err != nil {
			panic(err)
		}
		fmt.Println(out)
	}
	// Output:
	// Wrote 1 lines to hello.py
	//      1	print('hello')
	// Edited hello.py: replaced 1 occurrence(s)
	// Error: File 'missing.py' not found
	// Found 1 file(s) matching '*.py':
	//   /workspace/hello.py
}

func ExampleToolset_Call_errors() {
	ts, _ := toolset.New(newFake(), toolset.WithPermissions(toolset.ReadOnlyRuleset()))
	ctx := context.Background()

	// A tool the ruleset removed is unknown: a Go error, not a result.
	_, err := ts.Call(ctx, "write_file", []byte(`{"path": "a", "content": "b"}`))
	fmt.Println(errors.Is(err, toolset.ErrUnknownTool), err)

	// Bad arguments: a Go error whose text is meant for the model.
	_, err = ts.Call(ctx, "read_file", []byte(`{"offset": 3}`))
	fmt.Println(errors.Is(err, toolset.ErrInvalidArguments), err)

	// A permission refusal is a result.
	out, _ := ts.Call(ctx, "read_file", []byte(`{"path": ".env"}`))
	fmt.Println(out)
	// Output:
	// true toolset: unknown tool "write_file"
	// true read_file: path: required
	// Error: Permission denied: Protect sensitive files
}

func ExampleWithEditFormat() {
	sb := newFake().put("app.py", "def main():\n    pass\n")
	ts, _ := toolset.New(sb, toolset.WithEditFormat(toolset.EditFormatHashline))
	ctx := context.Background()

	out, _ := ts.Call(ctx, "read_file", []byte(`{"path": "app.py"}`))
	fmt.Println(out)
	out, _ = ts.Call(ctx, "hashline_edit", []byte(`{"path": "app.py", "start_line": 2, "start_hash": "`+toolset.LineHash("    pass")+`", "new_content": "    print('hi')"}`))
	fmt.Println(out)
	// Output:
	// 1:08|def main():
	// 2:3d|    pass
	// Edited app.py: Replaced 1 line(s) at line 2
}
