package toolset

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/podsandbox/podsandbox"
)

// EditFormat selects how the model edits files.
type EditFormat string

// Edit formats.
const (
	// EditFormatStrReplace offers edit_file: exact string replacement (the default).
	EditFormatStrReplace EditFormat = "str_replace"
	// EditFormatHashline offers hashline_edit, and read_file shows lines as "<n>:<hash>|<line>".
	EditFormatHashline EditFormat = "hashline"
)

const (
	defaultReadLimit      = podsandbox.DefaultReadLimit // read_file's limit default (2000)
	defaultExecuteTimeout = 120                         // execute's timeout default, in seconds
	globListCap           = 100                         // paths shown by glob
	grepListCap           = 50                          // files or lines shown by grep
	grepLineCap           = 100                         // characters of a line shown by grep
)

type config struct {
	includeExecute      bool
	writeApproval       bool
	executeApproval     bool
	defaultIgnoreHidden bool
	editFormat          EditFormat
	rules               *Ruleset
	descriptions        map[string]string
	workDir             string
}

// Option configures New. The options mirror upstream's create_console_toolset parameters.
type Option func(*config)

// WithExecute includes the execute tool (default true).
func WithExecute(include bool) Option { return func(c *config) { c.includeExecute = include } }

// WithWriteApproval marks write_file, edit_file and hashline_edit as requiring approval
// (default false).
func WithWriteApproval(require bool) Option { return func(c *config) { c.writeApproval = require } }

// WithExecuteApproval marks execute as requiring approval (default true).
func WithExecuteApproval(require bool) Option {
	return func(c *config) { c.executeApproval = require }
}

// WithDefaultIgnoreHidden sets grep's ignore_hidden default (default true).
func WithDefaultIgnoreHidden(ignore bool) Option {
	return func(c *config) { c.defaultIgnoreHidden = ignore }
}

// WithEditFormat chooses edit_file (EditFormatStrReplace, the default) or hashline_edit
// (EditFormatHashline).
func WithEditFormat(f EditFormat) Option { return func(c *config) { c.editFormat = f } }

// WithPermissions applies a permission ruleset (see DefaultRuleset and the other presets):
//
//   - an operation whose default is Deny removes its tools: write → write_file; edit → edit_file
//     and hashline_edit; execute → execute; and likewise read → read_file, ls, glob, grep;
//   - an operation whose default is Ask marks its tools as requiring approval (write_file follows
//     write; the edit tools follow write or edit; execute follows execute), in addition to
//     WithWriteApproval and WithExecuteApproval;
//   - each call is checked against the rules: a path denied for read, write or edit, or a command
//     denied for execute (or naming a path denied for read or write), is refused with an
//     "Error: Permission denied..." result; ls and glob drop denied entries and grep drops matches
//     in files denied for grep or read.
//
// The ruleset is not copied; do not change it while the toolset is in use.
func WithPermissions(r *Ruleset) Option { return func(c *config) { c.rules = r } }

// WithDescriptions replaces tool descriptions, keyed by tool name. A key that names no tool
// makes New fail.
func WithDescriptions(d map[string]string) Option {
	return func(c *config) {
		c.descriptions = make(map[string]string, len(d))
		for k, v := range d {
			c.descriptions[k] = v
		}
	}
}

// WithWorkDir tells the permission checks the sandbox's work dir, so a relative path is also
// checked in its absolute form (a rule "/workspace/private/**" then covers "private/x"). By
// default it is the sandbox's own, when it has a WorkDir() string method (as
// *podsandbox.KubernetesPodSandbox does); otherwise paths are checked as written and cleaned.
func WithWorkDir(dir string) Option { return func(c *config) { c.workDir = dir } }

// Toolset is the console toolset over one Sandbox: the Go form of upstream's
// create_console_toolset. It is safe for concurrent use; calls that change the same file are
// serialized.
type Toolset struct {
	sb     podsandbox.Sandbox
	cfg    config
	tools  []Tool
	byName map[string]Tool

	mu    sync.Mutex
	seen  map[string][sha256.Size]byte // fingerprint of what the model last read or wrote, by path
	locks map[string]*pathLock
}

// New returns the console toolset for sb. It fails on an unknown edit format, an invalid
// ruleset, or a description override for a tool that does not exist.
func New(sb podsandbox.Sandbox, opts ...Option) (*Toolset, error) {
	if sb == nil {
		return nil, errors.New("toolset: nil sandbox")
	}
	workDir := ""
	if wd, ok := sb.(interface{ WorkDir() string }); ok {
		workDir = wd.WorkDir()
	}
	cfg, err := newConfig(workDir, opts)
	if err != nil {
		return nil, err
	}
	t := &Toolset{
		sb:     sb,
		cfg:    cfg,
		byName: map[string]Tool{},
		seen:   map[string][sha256.Size]byte{},
		locks:  map[string]*pathLock{},
	}
	for _, tool := range cfg.tools() {
		t.tools = append(t.tools, tool)
		t.byName[tool.Name] = tool
	}
	return t, nil
}

// Definitions returns the tools New would offer with opts, without a sandbox: for a host that
// lists tools before it has one (an MCP server lists them before any session's sandbox exists).
func Definitions(opts ...Option) ([]Tool, error) {
	cfg, err := newConfig("", opts)
	if err != nil {
		return nil, err
	}
	return cfg.tools(), nil
}

// newConfig applies opts over the defaults and validates the result.
func newConfig(workDir string, opts []Option) (config, error) {
	cfg := config{
		includeExecute:      true,
		executeApproval:     true,
		defaultIgnoreHidden: true,
		editFormat:          EditFormatStrReplace,
		workDir:             workDir,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.editFormat != EditFormatStrReplace && cfg.editFormat != EditFormatHashline {
		return cfg, fmt.Errorf("toolset: unknown edit format %q (want %q or %q)", cfg.editFormat, EditFormatStrReplace, EditFormatHashline)
	}
	var unknown []string
	for k := range cfg.descriptions {
		if !validDescriptionKey(k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return cfg, fmt.Errorf("toolset: descriptions for unknown tools %s (valid: %s)", quoteList(unknown), quoteList(toolNames))
	}
	if cfg.rules != nil {
		if err := cfg.rules.validate(); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// tools returns the tool definitions of the configuration: less those the ruleset denies, with
// their approval flags.
func (c *config) tools() []Tool {
	var out []Tool
	for _, tool := range definitions(c) {
		op := toolOperation[tool.Name]
		if c.rules != nil && c.rules.DefaultAction(op) == Deny {
			continue
		}
		tool.RequiresApproval = c.requiresApproval(tool.Name)
		out = append(out, tool)
	}
	return out
}

// toolOperation maps each tool to its permission operation (upstream's ConsoleCapability map).
var toolOperation = map[string]Operation{
	ToolLs:           OpLs,
	ToolReadFile:     OpRead,
	ToolWriteFile:    OpWrite,
	ToolEditFile:     OpEdit,
	ToolHashlineEdit: OpEdit,
	ToolGlob:         OpGlob,
	ToolGrep:         OpGrep,
	ToolExecute:      OpExecute,
}

func (c *config) requiresApproval(name string) bool {
	ask := func(op Operation) bool { return c.rules != nil && c.rules.DefaultAction(op) == Ask }
	switch name {
	case ToolWriteFile:
		return c.writeApproval || ask(OpWrite)
	case ToolEditFile, ToolHashlineEdit:
		return c.writeApproval || ask(OpWrite) || ask(OpEdit)
	case ToolExecute:
		return c.executeApproval || ask(OpExecute)
	}
	return ask(toolOperation[name])
}

// Tools returns the tool definitions, in upstream's order: ls, read_file, write_file, edit_file
// or hashline_edit, glob, grep, execute (less any removed by the options or the ruleset).
func (t *Toolset) Tools() []Tool {
	out := make([]Tool, len(t.tools))
	for i, tool := range t.tools {
		tool.Parameters = slices.Clone(tool.Parameters)
		out[i] = tool
	}
	return out
}

// Tool returns the definition of the named tool, if the toolset offers it.
func (t *Toolset) Tool(name string) (Tool, bool) {
	tool, ok := t.byName[name]
	tool.Parameters = slices.Clone(tool.Parameters)
	return tool, ok
}

// SystemPrompt returns the system prompt for the toolset's edit format: SystemPrompt or
// HashlineSystemPrompt.
func (t *Toolset) SystemPrompt() string {
	if t.cfg.editFormat == EditFormatHashline {
		return HashlineSystemPrompt
	}
	return SystemPrompt
}

// Sandbox returns the sandbox the tools work on.
func (t *Toolset) Sandbox() podsandbox.Sandbox { return t.sb }

// Call runs the named tool with its JSON arguments and returns the text for the model: upstream's
// exact output strings, including every failure the model can act on as an "Error: ..." text (a
// missing file, an ambiguous edit, a stale read, a permission refusal, a failed command...).
//
// The error is non-nil only when there is no result for the model:
//   - ErrUnknownTool: name is not one of Tools() (for example a tool the ruleset removed);
//   - ErrInvalidArguments (an *ArgumentError): argsJSON is not an object, or an argument is
//     missing or has the wrong type; the message is written to be shown to the model;
//   - the caller's ctx ended;
//   - the sandbox cannot serve any request (podsandbox.ErrNotStarted, ErrStopped,
//     ErrSandboxGone, ErrUnauthorized, ErrStartup): the host must replace it, which the model
//     cannot do. The error wraps the sandbox's, for errors.Is.
//
// Approval is the host's business: Call does not check Tool.RequiresApproval, and assumes a
// tool that requires approval was approved.
func (t *Toolset) Call(ctx context.Context, name string, argsJSON []byte) (string, error) {
	if _, ok := t.byName[name]; !ok {
		return "", fmt.Errorf("toolset: %w %q", ErrUnknownTool, name)
	}
	a, err := parseArgs(name, argsJSON)
	if err != nil {
		return "", err
	}
	var out string
	switch name {
	case ToolLs:
		out, err = t.ls(ctx, a)
	case ToolReadFile:
		if t.cfg.editFormat == EditFormatHashline {
			out, err = t.readHashline(ctx, a)
		} else {
			out, err = t.readFile(ctx, a)
		}
	case ToolWriteFile:
		out, err = t.writeFile(ctx, a)
	case ToolEditFile:
		out, err = t.editFile(ctx, a)
	case ToolHashlineEdit:
		out, err = t.hashlineEdit(ctx, a)
	case ToolGlob:
		out, err = t.glob(ctx, a)
	case ToolGrep:
		out, err = t.grep(ctx, a)
	case ToolExecute:
		out, err = t.execute(ctx, a)
	}
	if err != nil {
		return "", err
	}
	return out, nil
}

// fingerprints: the staleness guard. Keys are cleaned paths, as the model wrote them.

func fingerprintKey(p string) string { return path.Clean(p) }

func (t *Toolset) remember(p string, data []byte) {
	t.mu.Lock()
	t.seen[fingerprintKey(p)] = sha256.Sum256(data)
	t.mu.Unlock()
}

func (t *Toolset) forget(p string) {
	t.mu.Lock()
	delete(t.seen, fingerprintKey(p))
	t.mu.Unlock()
}

func (t *Toolset) fingerprint(p string) ([sha256.Size]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fp, ok := t.seen[fingerprintKey(p)]
	return fp, ok
}

// pathLock serializes the calls that change one path, so a staleness check and the change it
// guards are not interleaved with another call's.
type pathLock struct {
	ch    chan struct{}
	users int
}

func (t *Toolset) lock(ctx context.Context, p string) (unlock func(), err error) {
	key := fingerprintKey(p)
	t.mu.Lock()
	l := t.locks[key]
	if l == nil {
		l = &pathLock{ch: make(chan struct{}, 1)}
		t.locks[key] = l
	}
	l.users++
	t.mu.Unlock()
	release := func() {
		t.mu.Lock()
		if l.users--; l.users == 0 {
			delete(t.locks, key)
		}
		t.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// CallResult is Call for a host's tool loop. An error the model can fix by calling again
// differently (ErrUnknownTool, ErrInvalidArguments) becomes an error result for the model, with
// isError set: "Error: Unknown tool name: 'x'. Available tools: 'ls', ..." or
// "Error: Invalid arguments for read_file: path: required. Fix the arguments and try again.".
// Every other result has isError false (a tool's own "Error: ..." texts are results, as
// upstream's); the remaining errors (the ctx ended, the sandbox is unusable) are returned.
func (t *Toolset) CallResult(ctx context.Context, name string, argsJSON []byte) (text string, isError bool, err error) {
	out, err := t.Call(ctx, name, argsJSON)
	var ae *ArgumentError
	switch {
	case err == nil:
		return out, false, nil
	case errors.Is(err, ErrUnknownTool):
		quoted := make([]string, len(t.tools))
		for i, tool := range t.tools {
			quoted[i] = "'" + tool.Name + "'"
		}
		return fmt.Sprintf("Error: Unknown tool name: '%s'. Available tools: %s", name, strings.Join(quoted, ", ")), true, nil
	case errors.As(err, &ae):
		msg := ae.Msg
		if ae.Arg != "" {
			msg = ae.Arg + ": " + msg
		}
		return fmt.Sprintf("Error: Invalid arguments for %s: %s. Fix the arguments and try again.", name, msg), true, nil
	}
	return "", false, err
}
