// Package toolset is the console toolset for a podsandbox.Sandbox: the Go port of
// pydantic-ai-backend's create_console_toolset. It gives a model the tools ls, read_file,
// write_file, edit_file (or hashline_edit), glob, grep and execute, as JSON Schema definitions
// usable with any LLM API, and runs their calls on the sandbox.
//
// Tool results are upstream's exact strings ("Contents of <path>:", "Wrote N lines to <path>",
// "Edited <path>: replaced N occurrence(s)", "Command failed (exit code N):\n...", ...), and every
// failure the model can act on is a result too, worded as upstream words it ("Error: File 'x' not
// found", "Error: Offset 9 exceeds file length (3 lines)", ...). Call returns a Go error only when
// there is no result to give the model; see Toolset.Call.
//
// A host loop looks like:
//
//	ts, err := toolset.New(sb)
//	...
//	for _, tool := range ts.Tools() { /* register tool.Name, tool.Description, tool.Parameters */ }
//	...
//	out, err := ts.Call(ctx, call.Name, call.Arguments) // out goes back as the tool result
//
// The adapters module (github.com/podsandbox/podsandbox/adapters) converts tools and calls for
// the OpenAI and Anthropic Go SDKs.
//
// # Staleness guard
//
// The toolset remembers a SHA-256 fingerprint of the content of every file the model read with
// read_file or wrote with write_file (or changed with an edit). An edit to such a file is refused
// with "Error: '<path>' changed since you last read it. Read it again before editing so your
// change applies to the current contents." when the file no longer has that content. A file the
// model never read is not guarded. read_file fetches the file's bytes for this, before the
// numbered text.
//
// # Permissions
//
// WithPermissions applies a Ruleset (DefaultRuleset, PermissiveRuleset, ReadOnlyRuleset,
// StrictRuleset or your own): denied operations remove their tools, "ask" operations mark their
// tools RequiresApproval, and per-path rules refuse single calls with an
// "Error: Permission denied..." result.
package toolset
