package toolset

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Action is what a permission rule or default decides for an operation.
type Action string

// Actions, as upstream's PermissionAction.
const (
	// Allow lets the operation proceed.
	Allow Action = "allow"
	// Ask requires a person's approval: a tool whose operation defaults to Ask is reported with
	// Tool.RequiresApproval, and the host is expected to get approval before calling it.
	Ask Action = "ask"
	// Deny refuses the operation. A ruleset whose default for an operation is Deny removes the
	// tools of that operation from the toolset.
	Deny Action = "deny"
)

// Operation is what a tool does, for permission purposes.
type Operation string

// Operations, as upstream's PermissionOperation.
const (
	OpRead    Operation = "read"
	OpWrite   Operation = "write"
	OpEdit    Operation = "edit"
	OpExecute Operation = "execute"
	OpGlob    Operation = "glob"
	OpGrep    Operation = "grep"
	OpLs      Operation = "ls"
)

// Rule applies Action to the targets (paths, or commands for OpExecute) matching Pattern.
//
// Pattern is a glob over the whole target: "*" matches within one path segment, "**" across
// segments ("**/" also matches no directory at all), "?" one character other than "/", and
// "[...]" a character class ("[!...]" or "[^...]" negated). A malformed pattern matches nothing.
type Rule struct {
	Pattern     string
	Action      Action
	Description string // shown in the refusal ("Permission denied: <Description>")
}

// OperationPermissions configures one operation. Rules are tried in order and the first match
// wins; with no match, Default applies ("" means the ruleset's default).
type OperationPermissions struct {
	Default Action
	Rules   []Rule
}

// Ruleset is upstream's PermissionRuleset: a default plus per-operation permissions. A nil
// operation uses Default.
type Ruleset struct {
	Default                                    Action
	Read, Write, Edit, Execute, Glob, Grep, Ls *OperationPermissions
}

func (r *Ruleset) op(o Operation) *OperationPermissions {
	switch o {
	case OpRead:
		return r.Read
	case OpWrite:
		return r.Write
	case OpEdit:
		return r.Edit
	case OpExecute:
		return r.Execute
	case OpGlob:
		return r.Glob
	case OpGrep:
		return r.Grep
	case OpLs:
		return r.Ls
	}
	return nil
}

// DefaultAction is the action for op when no rule matches.
func (r *Ruleset) DefaultAction(op Operation) Action {
	if p := r.op(op); p != nil && p.Default != "" {
		return p.Default
	}
	return r.Default
}

// MatchingRule returns the first rule of op whose pattern matches target.
func (r *Ruleset) MatchingRule(op Operation, target string) (Rule, bool) {
	if p := r.op(op); p != nil {
		for _, rule := range p.Rules {
			if matchPattern(rule.Pattern, target) {
				return rule, true
			}
		}
	}
	return Rule{}, false
}

// Check resolves the action for op on target: the first matching rule's, else the default.
func (r *Ruleset) Check(op Operation, target string) Action {
	if rule, ok := r.MatchingRule(op, target); ok {
		return rule.Action
	}
	return r.DefaultAction(op)
}

func (r *Ruleset) validate() error {
	valid := func(a Action) bool { return a == Allow || a == Ask || a == Deny }
	if !valid(r.Default) {
		return fmt.Errorf("toolset: ruleset default %q is not allow, ask or deny", r.Default)
	}
	for _, o := range []Operation{OpRead, OpWrite, OpEdit, OpExecute, OpGlob, OpGrep, OpLs} {
		p := r.op(o)
		if p == nil {
			continue
		}
		if p.Default != "" && !valid(p.Default) {
			return fmt.Errorf("toolset: ruleset %s default %q is not allow, ask or deny", o, p.Default)
		}
		for _, rule := range p.Rules {
			if !valid(rule.Action) {
				return fmt.Errorf("toolset: ruleset %s rule %q: action %q is not allow, ask or deny", o, rule.Pattern, rule.Action)
			}
		}
	}
	return nil
}

// The preset pattern lists (upstream's SECRETS_PATTERNS, SYSTEM_PATTERNS, DANGEROUS_COMMANDS).
var (
	secretsPatterns = []string{
		"**/.env", "**/.env.*", "**/*.pem", "**/*.key", "**/*.crt", "**/credentials*",
		"**/secrets*", "**/*secret*", "**/*password*", "**/.aws/**", "**/.ssh/**", "**/.gnupg/**",
	}
	systemPatterns = []string{
		"/etc/**", "/var/**", "/usr/**", "/bin/**", "/sbin/**", "/boot/**", "/sys/**", "/proc/**",
	}
	dangerousCommands = []string{
		"rm -rf /*", "rm -rf /", ":(){:|:&};:", "dd if=*of=/dev/*", "mkfs*", "> /dev/sda", "chmod -R 777 /",
	}
)

const (
	secretsDescription   = "Protect sensitive files"
	systemDescription    = "Protect sensitive and system files"
	dangerousDescription = "Block dangerous commands"
)

func denyRules(description string, patterns ...[]string) []Rule {
	var rules []Rule
	for _, ps := range patterns {
		for _, p := range ps {
			rules = append(rules, Rule{Pattern: p, Action: Deny, Description: description})
		}
	}
	return rules
}

func perms(def Action, rules []Rule) *OperationPermissions {
	return &OperationPermissions{Default: def, Rules: rules}
}

// DefaultRuleset is upstream's DEFAULT_RULESET: reading, listing and searching are allowed except
// for secrets; writing, editing and running commands ask first. Each call returns a fresh copy.
func DefaultRuleset() *Ruleset {
	return &Ruleset{
		Default: Ask,
		Read:    perms(Allow, denyRules(secretsDescription, secretsPatterns)),
		Write:   perms(Ask, denyRules(secretsDescription, secretsPatterns)),
		Edit:    perms(Ask, denyRules(secretsDescription, secretsPatterns)),
		Execute: perms(Ask, denyRules(dangerousDescription, dangerousCommands)),
		Glob:    perms(Allow, nil),
		Grep:    perms(Allow, nil),
		Ls:      perms(Allow, nil),
	}
}

// PermissiveRuleset is upstream's PERMISSIVE_RULESET: everything is allowed except secrets,
// system paths and dangerous commands.
func PermissiveRuleset() *Ruleset {
	return &Ruleset{
		Default: Allow,
		Read:    perms(Allow, denyRules(secretsDescription, secretsPatterns)),
		Write:   perms(Allow, denyRules(systemDescription, secretsPatterns, systemPatterns)),
		Edit:    perms(Allow, denyRules(systemDescription, secretsPatterns, systemPatterns)),
		Execute: perms(Allow, denyRules(dangerousDescription, dangerousCommands)),
		Glob:    perms(Allow, nil),
		Grep:    perms(Allow, nil),
		Ls:      perms(Allow, nil),
	}
}

// ReadOnlyRuleset is upstream's READONLY_RULESET: reading (except secrets), listing and searching
// only. write_file, edit_file, hashline_edit and execute are removed from the toolset.
func ReadOnlyRuleset() *Ruleset {
	return &Ruleset{
		Default: Deny,
		Read:    perms(Allow, denyRules(secretsDescription, secretsPatterns)),
		Write:   perms(Deny, nil),
		Edit:    perms(Deny, nil),
		Execute: perms(Deny, nil),
		Glob:    perms(Allow, nil),
		Grep:    perms(Allow, nil),
		Ls:      perms(Allow, nil),
	}
}

// StrictRuleset is upstream's STRICT_RULESET: every operation asks first, and secrets and
// dangerous commands are refused.
func StrictRuleset() *Ruleset {
	return &Ruleset{
		Default: Ask,
		Read:    perms(Ask, denyRules(secretsDescription, secretsPatterns)),
		Write:   perms(Ask, denyRules(secretsDescription, secretsPatterns)),
		Edit:    perms(Ask, denyRules(secretsDescription, secretsPatterns)),
		Execute: perms(Ask, denyRules(dangerousDescription, dangerousCommands)),
		Glob:    perms(Ask, nil),
		Grep:    perms(Ask, nil),
		Ls:      perms(Ask, nil),
	}
}

// permissionDenied starts every refusal, so a host can tell a refusal from a fixable mistake.
const permissionDenied = "Permission denied"

// pathSpellings are the forms of p checked against the rules: as written, cleaned, and (for a
// relative path, when the work dir is known) absolute. A deny on any of them refuses.
func (t *Toolset) pathSpellings(p string) []string {
	out := []string{p}
	add := func(s string) {
		for _, o := range out {
			if o == s {
				return
			}
		}
		out = append(out, s)
	}
	if p != "" {
		add(path.Clean(p))
		if t.cfg.workDir != "" && !path.IsAbs(p) {
			add(path.Join(t.cfg.workDir, p))
		}
	}
	return out
}

// refusal says why op on p may not proceed, or "" when it may. An Ask resolution counts as
// approved when the tool itself requires approval (the host asked before calling).
func (t *Toolset) refusal(op Operation, p string, approved bool) string {
	rs := t.cfg.rules
	if rs == nil {
		return ""
	}
	for _, s := range t.pathSpellings(p) {
		if msg := refusalFor(rs, op, s, approved); msg != "" {
			return msg
		}
	}
	return ""
}

func refusalFor(rs *Ruleset, op Operation, target string, approved bool) string {
	switch rs.Check(op, target) {
	case Deny:
		if rule, ok := rs.MatchingRule(op, target); ok && rule.Description != "" {
			return permissionDenied + ": " + rule.Description
		}
		return fmt.Sprintf("%s for %s on '%s'", permissionDenied, op, target)
	case Ask:
		if !approved {
			return fmt.Sprintf("%s for %s on '%s' (approval required)", permissionDenied, op, target)
		}
	}
	return ""
}

// hidden reports whether a listing row or match at p is denied for op (deny only: Ask does not
// hide anything, or a ruleset defaulting to Ask would blank every listing).
func (t *Toolset) hidden(p string, ops ...Operation) bool {
	rs := t.cfg.rules
	if rs == nil {
		return false
	}
	for _, s := range t.pathSpellings(p) {
		for _, op := range ops {
			if rs.Check(op, s) == Deny {
				return true
			}
		}
	}
	return false
}

// commandRefusal checks a command against the execute rules, then every path-looking token of it
// against the read and write deny rules (defence in depth, not a boundary: a shell can reach a
// file in ways string inspection cannot see).
func (t *Toolset) commandRefusal(command string, approved bool) string {
	rs := t.cfg.rules
	if rs == nil {
		return ""
	}
	if msg := refusalFor(rs, OpExecute, command, approved); msg != "" {
		return msg
	}
	targets := map[string]bool{}
	for _, tok := range commandTokens(command) {
		for _, s := range t.pathSpellings(tok) {
			targets[s] = true
		}
	}
	sorted := make([]string, 0, len(targets))
	for s := range targets {
		sorted = append(sorted, s)
	}
	sort.Strings(sorted)
	for _, s := range sorted {
		for _, op := range []Operation{OpRead, OpWrite} {
			if rs.Check(op, s) == Deny {
				return fmt.Sprintf("%s: command references '%s', which is denied for %s", permissionDenied, s, op)
			}
		}
	}
	return ""
}

// commandTokens splits a command into shell words (quotes and backslashes as POSIX sh), then adds
// the pieces of each word between shell operators and the value of each "--flag=value".
func commandTokens(command string) []string {
	words, ok := shellWords(command)
	if !ok {
		for _, w := range strings.Fields(command) {
			words = append(words, strings.Trim(w, `"'`))
		}
	}
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, w := range words {
		add(w)
		pieces := strings.FieldsFunc(w, func(r rune) bool { return strings.ContainsRune(";|&<>()`", r) })
		for _, piece := range append([]string{w}, pieces...) {
			add(piece)
			if _, v, found := strings.Cut(piece, "="); found {
				add(v)
			}
		}
	}
	return out
}

// shellWords is a small POSIX-shell word splitter. ok is false for an unbalanced quote.
func shellWords(s string) (words []string, ok bool) {
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, false
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\\\"$`\n", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, false
			}
			inWord = true
		case c == '\\':
			if i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			}
			inWord = true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, true
}

var (
	patternCache sync.Map // string -> *regexp.Regexp (nil: matches nothing)
)

// matchPattern reports whether target matches the rule glob pattern (see Rule).
func matchPattern(pattern, target string) bool {
	v, ok := patternCache.Load(pattern)
	if !ok {
		v, _ = patternCache.LoadOrStore(pattern, compilePattern(pattern))
	}
	re := v.(*regexp.Regexp)
	return re != nil && re.MatchString(target)
}

func compilePattern(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	for i := 0; i < len(pattern); {
		switch {
		case strings.HasPrefix(pattern[i:], "**/"):
			b.WriteString(`(?:.*/)?`)
			i += 3
		case strings.HasPrefix(pattern[i:], "**"):
			b.WriteString(`.*`)
			i += 2
		case pattern[i] == '*':
			b.WriteString(`[^/]*`)
			i++
		case pattern[i] == '?':
			b.WriteString(`[^/]`)
			i++
		case pattern[i] == '[':
			end := i + 1
			negated := end < len(pattern) && (pattern[end] == '!' || pattern[end] == '^')
			if negated {
				end++
			}
			if end < len(pattern) && pattern[end] == ']' {
				end++
			}
			for end < len(pattern) && pattern[end] != ']' {
				end++
			}
			if end >= len(pattern) {
				b.WriteString(regexp.QuoteMeta("["))
				i++
				continue
			}
			if negated {
				b.WriteString("[^" + pattern[i+2:end] + "]")
			} else {
				b.WriteString(pattern[i : end+1])
			}
			i = end + 1
		default:
			r := pattern[i:]
			n := 1
			for n < len(r) && r[n]&0xC0 == 0x80 { // keep a UTF-8 sequence together
				n++
			}
			b.WriteString(regexp.QuoteMeta(r[:n]))
			i += n
		}
	}
	b.WriteString(`$`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil
	}
	return re
}
