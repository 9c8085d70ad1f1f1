package toolset

import (
	"slices"
	"testing"
)

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		pattern, target string
		want            bool
	}{
		{"**/.env", ".env", true},
		{"**/.env", "a/b/.env", true},
		{"**/.env", "/workspace/.env", true},
		{"**/.env", ".env.local", false},
		{"**/.env.*", "conf/.env.local", true},
		{"**/*.pem", "certs/site.pem", true},
		{"**/*.pem", "certs/site.pem.txt", false},
		{"**/credentials*", "credentials.json", true},
		{"**/credentials*", "config/credentials/x", false}, // "*" stops at "/"
		{"**/.ssh/**", "/home/u/.ssh/id_rsa", true},
		{"/etc/**", "/etc/passwd", true},
		{"/etc/**", "/etc", false},
		{"/etc/**", "etc/passwd", false},
		{"*.go", "main.go", true},
		{"*.go", "pkg/main.go", false},
		{"?.txt", "a.txt", true},
		{"?.txt", "/.txt", false},
		{"[abc].txt", "b.txt", true},
		{"[!abc].txt", "b.txt", false},
		{"[^abc].txt", "d.txt", true},
		{"[].txt", "].txt", false}, // no closing "]" after the leading one: "[" is literal
		{"[.txt", "[.txt", true},
		{"a+b(c)", "a+b(c)", true},
		{"rm -rf /", "rm -rf /", true},
		{"rm -rf /*", "rm -rf /home", true},
		{"rm -rf /*", "rm -rf /home/u", false},
		{"mkfs*", "mkfs.ext4 -F disk.img", true},
		{"mkfs*", "mkfs.ext4 /dev/sda1", false}, // upstream's "*" stops at "/", in commands too
		{"dd if=*of=/dev/*", "dd if=zero of=/dev/sda", true},
		{"git push*", "git push\n--force", true}, // "*" crosses newlines
		{"**", "anything/at/all", true},
		{`[\]`, `\`, false}, // malformed class: matches nothing
		{"café/**", "café/menu", true},
	}
	for _, tt := range tests {
		if got := matchPattern(tt.pattern, tt.target); got != tt.want {
			t.Errorf("matchPattern(%q, %q) = %v, want %v", tt.pattern, tt.target, got, tt.want)
		}
	}
}

func TestRulesetCheck(t *testing.T) {
	rs := &Ruleset{
		Default: Ask,
		Read: &OperationPermissions{Default: Allow, Rules: []Rule{
			{Pattern: "**/public/**", Action: Allow},
			{Pattern: "**/*secret*", Action: Deny},
		}},
		Write: &OperationPermissions{Rules: []Rule{{Pattern: "/tmp/**", Action: Allow}}},
	}
	tests := []struct {
		op     Operation
		target string
		want   Action
	}{
		{OpRead, "notes.txt", Allow},
		{OpRead, "my_secret.txt", Deny},
		{OpRead, "docs/public/my_secret.txt", Allow}, // first matching rule wins
		{OpWrite, "/tmp/x", Allow},
		{OpWrite, "x", Ask}, // operation default "" falls back to the ruleset default
		{OpGrep, "x", Ask},  // no operation permissions at all
	}
	for _, tt := range tests {
		if got := rs.Check(tt.op, tt.target); got != tt.want {
			t.Errorf("Check(%s, %q) = %s, want %s", tt.op, tt.target, got, tt.want)
		}
	}
}

func TestPresetsAreFreshCopies(t *testing.T) {
	a := DefaultRuleset()
	a.Read.Rules[0].Action = Allow
	if DefaultRuleset().Read.Rules[0].Action != Deny {
		t.Error("DefaultRuleset shares its rules")
	}
	for _, rs := range []*Ruleset{DefaultRuleset(), PermissiveRuleset(), ReadOnlyRuleset(), StrictRuleset()} {
		if err := rs.validate(); err != nil {
			t.Error(err)
		}
	}
}

func TestCommandTokens(t *testing.T) {
	tests := []struct {
		command string
		want    []string
	}{
		{"cat .env", []string{"cat", ".env"}},
		{`cat "my file" 'x y'`, []string{"cat", "my file", "x y"}},
		{`echo a\ b`, []string{"echo", "a b"}},
		{`echo "a\"b"`, []string{"echo", `a"b`}},
		{"cat .env|head", []string{"cat", ".env|head", ".env", "head"}},
		{"head<.env", []string{"head<.env", "head", ".env"}},
		{"tool --config=/x/y", []string{"tool", "--config=/x/y", "/x/y"}},
		{`echo "unbalanced`, []string{"echo", "unbalanced"}},
		{"a=1 b", []string{"a=1", "1", "b"}},
		{"", nil},
	}
	for _, tt := range tests {
		if got := commandTokens(tt.command); !slices.Equal(got, tt.want) {
			t.Errorf("commandTokens(%q) = %q, want %q", tt.command, got, tt.want)
		}
	}
}

func TestCountLines(t *testing.T) {
	// Expected values are Python's len(s.splitlines()).
	tests := []struct {
		s    string
		want int
	}{
		{"", 0},
		{"a", 1},
		{"a\n", 1},
		{"\n", 1},
		{"\n\n", 2},
		{"a\nb", 2},
		{"a\r\nb\r\n", 2},
		{"a\rb", 2},
		{"\r\n\r", 2},
		{"a\u2028b\u2029c", 3},
		{"a\u0085b", 2},
		{"a\x85b", 1}, // a lone 0x85 byte is not U+0085
		{"a\x1cb\x1dc\x1ed\ve\ff", 6},
		{"héllo\nwörld", 2},
	}
	for _, tt := range tests {
		if got := countLines(tt.s); got != tt.want {
			t.Errorf("countLines(%q) = %d, want %d", tt.s, got, tt.want)
		}
	}
}

func TestTruncateRunes(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"hello", 3, "hel"},
		{"hi", 5, "hi"},
		{"ééé", 2, "éé"},
		{"日本語テキスト", 3, "日本語"},
		{"", 3, ""},
	}
	for _, tt := range tests {
		if got := truncateRunes(tt.s, tt.n); got != tt.want {
			t.Errorf("truncateRunes(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}

func TestDecodeUTF8(t *testing.T) {
	// Expected values are Python's bytes.decode("utf-8", "replace") for these inputs.
	tests := []struct {
		in   string
		want string
	}{
		{"plain", "plain"},
		{"ok\xff\xfe", "ok\ufffd\ufffd"},
		{"a\xc3", "a\ufffd"},
		{"é", "é"},
	}
	for _, tt := range tests {
		if got := decodeUTF8([]byte(tt.in)); got != tt.want {
			t.Errorf("decodeUTF8(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLineHash(t *testing.T) {
	// md5("") = d41d8cd9..., md5("hello") = 5d41402a...
	if got := LineHash(""); got != "d4" {
		t.Errorf(`LineHash("") = %q`, got)
	}
	if got := LineHash("hello"); got != "5d" {
		t.Errorf(`LineHash("hello") = %q`, got)
	}
}

func TestApplyHashlineDeleteEverything(t *testing.T) {
	end := 2
	got, summary, msg := ApplyHashline("a\nb\n", HashlineEdit{StartLine: 1, StartHash: LineHash("a"), EndLine: &end})
	if msg != "" || got != "\n" || summary != "Deleted 2 line(s) at line 1" {
		t.Errorf("got %q, %q, %q", got, summary, msg)
	}
	got, summary, msg = ApplyHashline("a\nb", HashlineEdit{StartLine: 1, StartHash: LineHash("a"), NewContent: "x\n"})
	if msg != "" || got != "x\n\nb" || summary != "Replaced 1 line(s) with 2 line(s) at line 1" {
		t.Errorf("got %q, %q, %q", got, summary, msg)
	}
}

func TestFormatHashlineDefaults(t *testing.T) {
	if got := FormatHashline("a\nb\n", -3, 0); got != "1:"+LineHash("a")+"|a\n2:"+LineHash("b")+"|b" {
		t.Errorf("FormatHashline with offset<0, limit<=0 = %q", got)
	}
}
