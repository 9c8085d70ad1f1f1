package ere

import (
	"errors"
	"regexp/syntax"
	"strings"
	"testing"
	"unicode/utf8"
)

// dotHigh is the part of the translation of "." (and of every class holding all of
// U+0080..U+10FFFF) after the bracket of ASCII bytes: the well-formed UTF-8 sequences of two to
// four bytes.
const dotHigh = "[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec][\x80-\xbf][\x80-\xbf]|" +
	"\xed[\x80-\x9f][\x80-\xbf]|[\xee-\xef][\x80-\xbf][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf][\x80-\xbf]|" +
	"[\xf1-\xf3][\x80-\xbf][\x80-\xbf][\x80-\xbf]|\xf4[\x80-\x8f][\x80-\xbf][\x80-\xbf]"

// translations are the table of TestTranslate; TestGrepAgrees also runs every pattern on grep.
var translations = []struct {
	pattern, want, wantPre string // wantPre: Prefilter's answer when it differs
}{
	// The review's five.
	{`(?i)foo`, `[Ff][Oo][Oo]`, ""},
	{`a+?`, `a+`, ""},
	{`[\D]1`, "([]\x01-\t\v-,./:-Z_-\x7f\\[^-]|" + dotHigh + ")1",
		"([]\x01-\t\v-,./:-Z_-\xff\\[^-]|" + dotHigh + ")1"},
	{`(?:foo)bar`, `foobar`, ""},
	// Literals and escapes.
	{`-v`, `-v`, ""},
	{`a.b`, "a([]\x01-\t\v-,.-Z_-\x7f\\[^-]|" + dotHigh + ")b", "a([]\x01-\t\v-,.-Z_-\xff\\[^-]|" + dotHigh + ")b"},
	{`\.\[\]\(\)\*\+\?\{\}\|\^\$\\`, `\.\[]\(\)\*\+\?\{}\|\^\$\\`, ""},
	{`a{`, `a\{`, ""},
	{`x{1,2`, `x\{1,2`, ""},
	{`é`, "é", ""},
	{`\x{FFFD}`, "\uFFFD", "([\x80-\xff]|\uFFFD)"},
	{`\x{D800}`, never, ""},
	{`\n`, never, ""},
	{`a\nb|c`, `c`, ""},
	{"\t\r", "\t\r", ""},
	{`\Q\pL.\E`, `\\pL\.`, ""},
	// Case folding.
	{`(?i)k`, "([Kk]|\u212a)", ""},
	{`(?i)é1`, "(\u00c9|\u00e9)1", ""},
	{`(?i:A)b`, `[Aa]b`, ""},
	// Classes.
	{`[abc]`, `[a-c]`, ""},
	{`[ab]`, `[ab]`, ""},
	{`[\d]`, `[0-9]`, ""},
	{`\s`, "[\t\f\r ]", ""},
	{`\w+`, `[0-9A-Z_a-z]+`, ""},
	{`[[:alpha:]]`, `[A-Za-z]`, ""},
	{`[\]]`, `]`, ""},
	{`[\]a]`, `[]a]`, ""},
	{`[\-a]`, `[a-]`, ""},
	{`[\^a]`, `[a^]`, ""},
	{`[\^\-]`, `[-^]`, ""},
	{`[\[.]`, `[.[]`, ""},
	{`[\[:]`, `[:[]`, ""},
	{`[\\a]`, `[a\]`, ""},
	{`[\]\-\^\[\\]`, `[]\[^-]`, ""},
	{`[*-.]`, `[*-,.-]`, ""},
	{`[à-ÿ]`, "\xc3[\xa0-\xbf]", ""},
	{`[é€]`, "(\xc3\xa9|\xe2\x82\xac)", ""},
	{`[a€]`, "(a|\xe2\x82\xac)", ""},
	{`[\x00a]`, `a`, ""},
	{`[^\x00-\x{10FFFF}]`, never, ""},
	// Anchors and boundaries.
	{`^foo$`, `^foo$`, ""},
	{`\Afoo\z`, `^foo$`, ""},
	{`(?m)^foo$`, `^foo$`, ""},
	{`\bfoo\b`, `\bfoo\b`, ""},
	{`x\B`, `x\B`, ""},
	{`\B.`, "\\B([]\x01-\t\v-,.-Z_-\x7f\\[^-]|" + dotHigh + ")", "\\B([]\x01-\t\v-,.-Z_-\xff\\[^-]|" + dotHigh + ")"},
	{`\B|`, `^`, ""},
	{`^*a`, `a`, ""},
	{`(^a)?b`, `(^a)?b`, ""},
	{`(^|,)x`, `(^|,)x`, ""},
	{`(?:\bx|y)?z`, `(\bx|y)?z`, ""},
	{`(?:^)+a`, `^a`, ""},
	{`a^b`, `a^b`, ""},
	// Groups, alternation, repetition.
	{`^(line|nothing)$`, `^(line|nothing)$`, ""},
	{`(a|b)*c`, `[ab]*c`, ""},
	{`(ab)*?`, `^`, ""},
	{`(ab)+`, `(ab)+`, ""},
	{`(?P<n>ab){2}`, `(ab){2}`, ""},
	{`a{2,5}`, `a{2,5}`, ""},
	{`a{2,}`, `a{2,}`, ""},
	{`a{0,1}b`, `a?b`, ""},
	{`a{1}`, `a`, ""},
	{`a{0}b`, `b`, ""},
	{`a{1000}`, `a{1000}`, ""},
	{`é+`, "(é)+", ""},
	{`a|`, `^`, ""},
	{`x(a|)y`, `xa?y`, ""},
	{`x(|a|bc)y`, `x(a|bc)?y`, ""},
	{`(?:)`, `^`, ""},
	{`x*`, `^`, ""},
	{`x*y`, `x*y`, ""},
	{`(a|b|)+c`, `([ab]?)+c`, ""},
}

func TestTranslate(t *testing.T) {
	for _, c := range translations {
		got, err := Translate(c.pattern)
		if err != nil || got != c.want {
			t.Errorf("Translate(%q) = %q, %v; want %q", c.pattern, got, err, c.want)
		}
		want := c.want
		if c.wantPre != "" {
			want = c.wantPre
		}
		if got, err := Prefilter(c.pattern); err != nil || got != want {
			t.Errorf("Prefilter(%q) = %q, %v; want %q", c.pattern, got, err, want)
		}
	}
}

func TestRefusals(t *testing.T) {
	for _, c := range []struct {
		pattern   string
		construct string // the UnsupportedError's Construct; "" for a plain *syntax.Error
		code      syntax.ErrorCode
	}{
		{`\pL+é`, `Unicode class \pL`, ""},
		{`[\p{Greek}a]`, `Unicode class \p{Greek}`, ""},
		{`\PN`, `Unicode class \PN`, ""},
		{`a\pé`, "", syntax.ErrInvalidCharRange},
		{`(a)\1`, `backreference \1`, syntax.ErrInvalidEscape},
		{`\9`, `backreference \9`, syntax.ErrInvalidEscape},
		{`\x00`, `a NUL byte (\x00)`, ""},
		{`[\x00]`, `a NUL byte (\x00)`, ""},
		{`[\x00\n]`, `a NUL byte (\x00)`, ""},
		{`\B`, `\B`, ""},
		{`\B*x*`, "", ""}, // accepted: \B* is the empty match
		{`(\B)+`, `\B`, ""},
		{`\Bx*`, `\B`, ""},
		{`x?\B`, `\B`, ""},
		{`\B|^`, `\B`, ""},
		{`(^-|1)+`, `an anchor or word boundary (^ $ \A \z \b \B) in a repeated group`, ""},
		{`(?:\W|\A[.\w[:alpha:]]|[^a-c]){2}`, `an anchor or word boundary (^ $ \A \z \b \B) in a repeated group`, ""},
		{`(?:\b-){2}`, `an anchor or word boundary (^ $ \A \z \b \B) in a repeated group`, ""},
		{`(?:x$)*y`, `an anchor or word boundary (^ $ \A \z \b \B) in a repeated group`, ""},
		{`(?:(?:\Ba)?b){1,3}`, `an anchor or word boundary (^ $ \A \z \b \B) in a repeated group`, ""},
		{`(?:.{1000}){1000}`, "", syntax.ErrInvalidRepeatSize},
		{`(?:\w{500}){10}`, "", syntax.ErrInvalidRepeatSize},
		{`.{1000}.{1000}`, "the pattern", ""},
		{`(?=a)`, "", syntax.ErrInvalidPerlOp},
		{`(`, "", syntax.ErrMissingParen},
		{`\C`, "", syntax.ErrInvalidEscape},
	} {
		_, err := Translate(c.pattern)
		_, perr := Prefilter(c.pattern)
		if (err == nil) != (perr == nil) {
			t.Errorf("%q: Translate says %v, Prefilter %v", c.pattern, err, perr)
		}
		var ue *UnsupportedError
		var se *syntax.Error
		switch {
		case c.construct == "" && c.code == "":
			if err != nil {
				t.Errorf("Translate(%q): %v, want it accepted", c.pattern, err)
			}
			continue
		case err == nil:
			t.Errorf("Translate(%q) accepted, want a refusal", c.pattern)
			continue
		}
		if c.construct != "" {
			if !errors.As(err, &ue) || ue.Construct != c.construct || !errors.Is(err, ErrUnsupported) || ue.Hint == "" {
				t.Errorf("Translate(%q): %#v, want an *UnsupportedError for %s", c.pattern, err, c.construct)
			}
		}
		if c.code != "" {
			if !errors.As(err, &se) {
				t.Errorf("Translate(%q): %v, want a *syntax.Error", c.pattern, err)
			} else if se.Code != c.code {
				t.Errorf("Translate(%q): code %q, want %q", c.pattern, se.Code, c.code)
			}
		}
		if c.construct == "" && errors.Is(err, ErrUnsupported) {
			t.Errorf("Translate(%q): %v is not a refusal but a parse error", c.pattern, err)
		}
	}
	_, err := Translate(`(a)\1`)
	if msg := err.Error(); !strings.Contains(msg, "backreference") || !strings.Contains(msg, "RE2") {
		t.Errorf("backreference message: %q", msg)
	}
}

// TestUTF8Seqs checks the byte sequences of some ranges against every rune.
func TestUTF8Seqs(t *testing.T) {
	for _, r := range [][2]rune{
		{0x80, utf8.MaxRune}, {0xe9, 0xe9}, {0x7ff, 0x800}, {0xd7ff, 0xe000}, {0xd800, 0xdfff},
		{0x123, 0x4567}, {0xfff0, 0x10010}, {0x10fff0, utf8.MaxRune}, {0x3ff, 0x40000},
	} {
		seqs := mergeSeqs(utf8Seqs(nil, r[0], r[1]))
		if r[0] == 0x80 && r[1] == utf8.MaxRune && len(seqs) != 8 {
			t.Errorf("the whole of U+0080..U+10FFFF is %d sequences, want 8: %v", len(seqs), seqs)
		}
		for c := rune(0x80); c <= utf8.MaxRune; c++ {
			if !utf8.ValidRune(c) {
				continue
			}
			b := []byte(string(c))
			in := false
			for _, s := range seqs {
				in = in || matchSeq(s, b)
			}
			if want := r[0] <= c && c <= r[1]; in != want {
				t.Fatalf("%U..%U: %U (% x) in the sequences = %v, want %v", r[0], r[1], c, b, in, want)
			}
		}
		for _, b := range [][]byte{{0xed, 0xa0, 0x80}, {0xc0, 0x80}, {0xe0, 0x80, 0x80}, {0xf4, 0x90, 0x80, 0x80}} {
			for _, s := range seqs {
				if matchSeq(s, b) {
					t.Errorf("%U..%U: ill-formed % x matches %v", r[0], r[1], b, s)
				}
			}
		}
	}
}

func matchSeq(s []byteRange, b []byte) bool {
	if len(s) != len(b) {
		return false
	}
	for i := range s {
		if b[i] < s[i].lo || b[i] > s[i].hi {
			return false
		}
	}
	return true
}
