package toolset

import (
	"bytes"
	"encoding/json"
	"strings"
)

// SystemPrompt is upstream's CONSOLE_SYSTEM_PROMPT, for the str_replace edit format.
const SystemPrompt = "## Console Tools\n\nYou have access to filesystem tools (ls, read_file, write_file, edit_file, glob, grep) and shell execution (execute). Read each tool's description for detailed usage guidance.\n"

// HashlineSystemPrompt is the system prompt for the hashline edit format: SystemPrompt naming
// hashline_edit, with a note on the format (upstream's HASHLINE_CONSOLE_PROMPT in spirit).
const HashlineSystemPrompt = "## Console Tools\n\nYou have access to filesystem tools (ls, read_file, write_file, hashline_edit, glob, grep) and shell execution (execute). Files are shown in hashline format: each line is tagged with its number and a content hash, and hashline_edit addresses lines by those tags. Read each tool's description for detailed usage guidance.\n"

// Tool is one tool definition, usable with any LLM API that takes JSON Schema tools.
type Tool struct {
	Name        string
	Description string
	// Parameters is a JSON Schema object describing the arguments.
	Parameters json.RawMessage
	// RequiresApproval tells the host to get a person's approval before calling the tool.
	RequiresApproval bool
}

// Tool names.
const (
	ToolLs           = "ls"
	ToolReadFile     = "read_file"
	ToolWriteFile    = "write_file"
	ToolEditFile     = "edit_file"
	ToolHashlineEdit = "hashline_edit"
	ToolGlob         = "glob"
	ToolGrep         = "grep"
	ToolExecute      = "execute"
)

// toolNames are the keys a descriptions override may use.
var toolNames = []string{ToolLs, ToolReadFile, ToolWriteFile, ToolEditFile, ToolHashlineEdit, ToolGlob, ToolGrep, ToolExecute}

// toolText is everything the model reads about one tool (upstream's ToolText).
type toolText struct {
	summary, usage, returns string
}

// render shapes the description as pydantic-ai does a docstring with a Returns section.
func (t toolText) render() string {
	body := t.summary
	if t.usage != "" {
		body += "\n\n" + t.usage
	}
	return "<summary>" + body + "</summary>\n<returns>\n<description>" + t.returns + "</description>\n</returns>"
}

var (
	lsText = toolText{
		summary: "List the files and directories at a path, with their sizes.",
		usage: "It shows what one directory holds, without descending into subdirectories. To find files " +
			"by name or extension at any depth, use `glob`.",
		returns: "A `Contents of <path>:` line, then one line per entry: directories end with `/`, files " +
			"show their size in bytes. A missing directory and an empty one give the same answer, " +
			"`Directory '<path>' is empty or does not exist`.",
	}
	readFileText = toolText{
		summary: "Read a file's contents, with line numbers.",
		usage: "Read a file before editing it: `edit_file` needs the exact text, and refuses to edit a file " +
			"that changed since you last read or wrote it.\n\n" +
			"`offset` counts from 0 while the line numbers shown count from 1, so `offset=100` starts at " +
			"line 101. For a long file, read the first 100 lines to see its structure, then the part you " +
			"need. Read several files by calling this tool several times in one response.",
		returns: "The lines, each prefixed with its 1-based line number and a tab, and a " +
			"`... (N more lines)` trailer when the file goes on. A missing file, a directory or an offset " +
			"past the end answers with a line starting `Error:`; correct the call and try again.",
	}
	hashlineReadFileText = toolText{
		summary: "Read a file's contents, each line tagged with a content hash.",
		usage: "Read a file before editing it: `hashline_edit` addresses lines by the `line:hash` tags shown " +
			"here, and refuses an edit whose hash no longer matches the file.\n\n" +
			"`offset` counts from 0 while the tags count from 1. For a long file, read the first 100 lines, " +
			"then the part you need.",
		returns: "One line per line of the file, formatted `<line>:<hash>|<content>` with a two-character " +
			"hash of that line's content, a `... (N more lines)` trailer when the file goes on, and " +
			"`(empty file)` for an empty file. A missing file or an offset past the end answers with a " +
			"line starting `Error:`.",
	}
	editFileText = toolText{
		summary: "Replace an exact string in a file.",
		usage: "`old_string` must match the file exactly, indentation and whitespace included, so read the " +
			"file first. It must also occur exactly once: add surrounding lines until it is unique, or set " +
			"`replace_all` when you mean every occurrence, as in a rename.\n\n" +
			"Change only what you mean to change. Read the file again before another edit to it: a " +
			"formatter or a hook may have rewritten it.",
		returns: "`Edited <path>: replaced N occurrence(s)`, or a line starting `Error:` when the string was " +
			"not found, was found more than once, or the file changed since you last read it. Read the " +
			"file again and send an `old_string` that matches exactly one place.",
	}
	hashlineEditText = toolText{
		summary: "Replace, insert or delete lines addressed by their content hashes.",
		usage: "Each edit anchors on a `line:hash` tag from `read_file`. Replace one line with `start_line`, " +
			"`start_hash` and `new_content`; replace a range by adding `end_line` and `end_hash`; insert " +
			"with `insert_after`; delete by sending an empty `new_content`.\n\n" +
			"A hash that does not match means the file changed since you read it: read it again rather " +
			"than guess. For several edits to one file, work from the bottom up so the line numbers " +
			"above stay valid.",
		returns: "`Edited <path>:` and what changed (lines replaced, inserted or deleted, and where), or a " +
			"line starting `Error:`. After a hash mismatch, read the file again and retry.",
	}
	globText = toolText{
		summary: "Find files whose path matches a glob pattern.",
		usage: "Use it to discover files before reading or editing them. `*` matches within one path " +
			"segment and `**` across directories; a pattern may match at any depth below `path`, so " +
			"`*.py` and `**/*.py` both find every Python file there, and `src/*.ts` finds TypeScript " +
			"files directly in any `src` directory. To search inside files, use `grep`.",
		returns: "`Found N file(s) matching '<pattern>':` and up to 100 paths, ending with `... and K more` " +
			"when there are more (narrow the pattern to see them), or `No files matching '<pattern>' " +
			"in <path>`.",
	}
	grepText = toolText{
		summary: "Search the contents of files for a regular expression.",
		usage: "Use it instead of running `grep` or `rg` through `execute`. Narrow the search with `path` " +
			"(a file or a directory) and `glob_pattern` (file names), and choose what comes back with " +
			"`output_mode`. Patterns use the syntax common to POSIX extended regular expressions and " +
			"RE2: no backreferences or lookaround.",
		returns: "For `files_with_matches`, `Files containing '<pattern>':` and the paths; for `content`, " +
			"`Matches for '<pattern>':` and `path:line: text` lines cut to 100 characters; for `count`, " +
			"`Found N match(es) for '<pattern>'`. Lists stop at 50 entries with `... and K more`. No " +
			"match answers `No matches for '<pattern>'`.",
	}
	executeText = toolText{
		summary: "Run a shell command in the working directory.",
		usage: "Use it for work that needs a shell: builds, tests, package managers, git, running programs. " +
			"To read, write, edit or search files, use the other tools rather than `cat`, `sed`, `echo >`, " +
			"`find` or `grep`.\n\n" +
			"Quote paths that contain spaces. Chain dependent steps with `&&` in one command and run " +
			"independent ones as separate calls. Raise `timeout` for a slow build or test suite, and send " +
			"long output to a file you then read.",
		returns: "The command's output, stdout and stderr together. Output that is too long keeps its " +
			"beginning and its end, with `[... N bytes omitted ...]` between them, and ends with " +
			"`... (output truncated)` and the path of a file that holds all of it. A non-zero exit answers `Command failed (exit code N):` and the " +
			"output; a command stopped by its timeout answers `Error: Command timed out` and what it " +
			"printed.",
	}
)

func writeFileText(editTool string) toolText {
	return toolText{
		summary: "Write a file, creating it or replacing everything in it.",
		usage: "Use it to create a file or to rewrite one completely. To change part of an existing file, " +
			"prefer `" + editTool + "`, which keeps everything you do not mention. Missing parent " +
			"directories are created. Never write secrets such as API keys or credentials.",
		returns: "`Wrote N lines to <path>`, or a line starting `Error:`. A write counts as a read, so you " +
			"can edit the file straight afterwards.",
	}
}

// Argument descriptions. Those given by upstream's ToolText.args are kept word for word.
const (
	argPathRead   = "File to read, absolute or relative to the working directory."
	argPathWrite  = "Path of the file to write, absolute or relative to the working directory."
	argPathEdit   = "Path of the file to edit, absolute or relative to the working directory."
	argLsPath     = "Directory to list. Defaults to the working directory."
	argOffset     = "First line to return, counting from 0. Defaults to 0."
	argLimit      = "How many lines to return. Defaults to 2000."
	argContent    = "The file's complete new content."
	argOldString  = "Text to replace, matched exactly, whitespace included."
	argNewString  = "Text to put in its place. Must differ from `old_string`."
	argReplaceAll = "Replace every occurrence. Defaults to false, which requires `old_string` to appear exactly once."
	argStartLine  = "Number of the line where the edit starts, counting from 1 as the tags do."
	argStartHash  = "Two-character hash from the tag of `start_line`."
	argNewContent = "Replacement text, lines separated by newlines. An empty string deletes the line or range."
	argEndLine    = "Number of the last line of an inclusive range, counting from 1. Omit it to edit one line."
	argEndHash    = "Two-character hash from the tag of `end_line`."
	argInsert     = "Insert `new_content` below `start_line` rather than replacing it. Defaults to false."
	argPattern    = "Glob pattern, e.g. `\"*.py\"`, `\"**/*.ts\"`, `\"**/test_*.py\"`."
	argGlobPath   = "Directory to search under. Defaults to the working directory."
	argRegex      = "The regular expression to look for."
	argGrepPath   = "File or directory to search in. Defaults to the working directory."
	argGrepGlob   = "Only search files whose name matches this glob, e.g. `\"*.py\"`."
	argOutputMode = "What to return: `\"files_with_matches\"` (the default) lists the matching files, `\"content\"` the matching lines, `\"count\"` the number of matches."
	argHidden     = "Skip hidden files and directories (names starting with `.`)."
	argCommand    = "Shell command to run, with `/bin/sh -c`."
	argTimeout    = "Seconds to allow before the command is killed. Defaults to 120."
)

// Grep output modes.
const (
	modeContent = "content"
	modeFiles   = "files_with_matches"
	modeCount   = "count"
)

// kv and object render JSON objects with their keys in a fixed order.
type kv struct {
	k string
	v any
}

type object []kv

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := marshalNoEscape(e.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshalNoEscape is json.Marshal without HTML escaping, so descriptions keep "<" and ">".
func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// param is one property of a tool's argument schema, shaped as pydantic renders it.
type param struct {
	name     string
	typ      object // the type part: {"type": ...}, {"anyOf": ...} or {"enum": ...}
	desc     string
	required bool
	def      any // nil: no default (set hasDef for an explicit null default)
	hasDef   bool
}

func typ(t string) object { return object{{"type", t}} }

func nullable(t string) object {
	return object{{"anyOf", []object{typ(t), typ("null")}}}
}

func required(name string, t object, desc string) param {
	return param{name: name, typ: t, desc: desc, required: true}
}

func optional(name string, t object, desc string, def any) param {
	return param{name: name, typ: t, desc: desc, def: def, hasDef: true}
}

func schema(params ...param) json.RawMessage {
	props := object{}
	req := []string{}
	for _, p := range params {
		prop := append(object{}, p.typ...)
		prop = append(prop, kv{"description", p.desc})
		if p.hasDef {
			prop = append(prop, kv{"default", p.def})
		}
		props = append(props, kv{p.name, prop})
		if p.required {
			req = append(req, p.name)
		}
	}
	s := object{{"type", "object"}, {"properties", props}}
	if len(req) > 0 {
		s = append(s, kv{"required", req})
	}
	s = append(s, kv{"additionalProperties", false})
	out, err := marshalNoEscape(s)
	if err != nil {
		panic("toolset: schema: " + err.Error()) // static data; cannot happen
	}
	return out
}

// definitions builds the tool list for a configuration, before removals by the ruleset.
func definitions(cfg *config) []Tool {
	editTool := ToolEditFile
	if cfg.editFormat == EditFormatHashline {
		editTool = ToolHashlineEdit
	}
	desc := func(name string, t toolText) string {
		if d, ok := cfg.descriptions[name]; ok {
			return d
		}
		return t.render()
	}
	readText := readFileText
	if cfg.editFormat == EditFormatHashline {
		readText = hashlineReadFileText
	}

	tools := []Tool{
		{
			Name:        ToolLs,
			Description: desc(ToolLs, lsText),
			Parameters:  schema(optional("path", typ("string"), argLsPath, ".")),
		},
		{
			Name:        ToolReadFile,
			Description: desc(ToolReadFile, readText),
			Parameters: schema(
				required("path", typ("string"), argPathRead),
				optional("offset", typ("integer"), argOffset, 0),
				optional("limit", typ("integer"), argLimit, defaultReadLimit),
			),
		},
		{
			Name:        ToolWriteFile,
			Description: desc(ToolWriteFile, writeFileText(editTool)),
			Parameters: schema(
				required("path", typ("string"), argPathWrite),
				required("content", typ("string"), argContent),
			),
		},
	}
	if cfg.editFormat == EditFormatHashline {
		tools = append(tools, Tool{
			Name:        ToolHashlineEdit,
			Description: desc(ToolHashlineEdit, hashlineEditText),
			Parameters: schema(
				required("path", typ("string"), argPathEdit),
				required("start_line", typ("integer"), argStartLine),
				required("start_hash", typ("string"), argStartHash),
				required("new_content", typ("string"), argNewContent),
				optional("end_line", nullable("integer"), argEndLine, nil),
				optional("end_hash", nullable("string"), argEndHash, nil),
				optional("insert_after", typ("boolean"), argInsert, false),
			),
		})
	} else {
		tools = append(tools, Tool{
			Name:        ToolEditFile,
			Description: desc(ToolEditFile, editFileText),
			Parameters: schema(
				required("path", typ("string"), argPathEdit),
				required("old_string", typ("string"), argOldString),
				required("new_string", typ("string"), argNewString),
				optional("replace_all", typ("boolean"), argReplaceAll, false),
			),
		})
	}
	tools = append(tools,
		Tool{
			Name:        ToolGlob,
			Description: desc(ToolGlob, globText),
			Parameters: schema(
				required("pattern", typ("string"), argPattern),
				optional("path", typ("string"), argGlobPath, "."),
			),
		},
		Tool{
			Name:        ToolGrep,
			Description: desc(ToolGrep, grepText),
			Parameters: schema(
				required("pattern", typ("string"), argRegex),
				optional("path", nullable("string"), argGrepPath, nil),
				optional("glob_pattern", nullable("string"), argGrepGlob, nil),
				optional("output_mode", object{{"enum", []string{modeContent, modeFiles, modeCount}}, {"type", "string"}}, argOutputMode, modeFiles),
				optional("ignore_hidden", typ("boolean"), argHidden, cfg.defaultIgnoreHidden),
			),
		},
	)
	if cfg.includeExecute {
		tools = append(tools, Tool{
			Name:        ToolExecute,
			Description: desc(ToolExecute, executeText),
			Parameters: schema(
				required("command", typ("string"), argCommand),
				optional("timeout", nullable("integer"), argTimeout, defaultExecuteTimeout),
			),
		})
	}
	return tools
}

// validDescriptionKey reports whether name may be overridden.
func validDescriptionKey(name string) bool {
	for _, n := range toolNames {
		if n == name {
			return true
		}
	}
	return false
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "\"" + n + "\""
	}
	return strings.Join(q, ", ")
}
