package ere

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// grepper is a grep binary, run as the API transport runs it in the pod: grep -E -f PATTERNFILE
// in the C locale (the pattern is bytes, and the arguments of pods/exec must be UTF-8).
type grepper struct {
	name string
	argv []string
}

// greps are the grep binaries of the two pod images: GNU grep (Debian's python image), which every
// Debian system has, and busybox (the busybox image is Debian's busybox-static). A missing one fails
// the test: make test installs busybox-static (hack/cluster/packages.sh) before the unit tests.
func greps(t testing.TB) []grepper {
	t.Helper()
	if _, err := os.Stat("/bin/grep"); err != nil {
		t.Fatalf("GNU grep: %v", err)
	}
	gs := []grepper{{"gnu", []string{"/bin/grep"}}}
	if p, err := exec.LookPath("busybox"); err == nil {
		gs = append(gs, grepper{"busybox", []string{p, "grep"}})
	}
	return gs
}

func busyboxMissing(t testing.TB, gs []grepper) {
	if len(gs) < 2 {
		t.Fatal("busybox not found: apt-get install busybox-static (make test installs it before the unit tests)")
	}
}

// selected returns the numbers (from 1) of the lines of file that g selects with pattern.
func (g grepper) selected(t testing.TB, pattern, file string) map[int]bool {
	t.Helper()
	pf, err := os.CreateTemp(filepath.Dir(file), "pattern")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(pf.Name())
	if _, err := pf.WriteString(pattern + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := pf.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append(g.argv[1:len(g.argv):len(g.argv)], "-nE", "-f", pf.Name(), "--", file)
	cmd := exec.CommandContext(ctx, g.argv[0], args...)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) || errb.Len() > 0 {
		t.Fatalf("%s grep -E %q: %v, stderr %q", g.name, pattern, err, errb.String())
	}
	sel := map[int]bool{}
	for _, l := range strings.SplitAfter(out.String(), "\n") {
		if l == "" {
			continue
		}
		num, _, ok := strings.Cut(l, ":")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(l, "\n") {
			t.Fatalf("%s grep: unexpected output line %q", g.name, l)
		}
		sel[n] = true
	}
	return sel
}

// samples are the lines TestGrepAgrees searches: ASCII, UTF-8, the bytes of bracket syntax, and
// lines that are not valid UTF-8 (Latin-1, a lone continuation byte, truncated, overlong, a
// surrogate, bytes that never occur in UTF-8).
var samples = []string{
	"", "a", "aa", "aaa", "ab", "abc", "b", "c", "x", "xy", "xay", "xaay", "xaby", "xbcy", "bc", "ac",
	"foo", "FOO", "Foo", "fOo", "foobar", "FooBar", "bar", "foo bar", "barfoo", "food", "xfoo",
	"1", "a1", "b1", "é1", " 1", "11", "-v flag", "-", "--", "x-y", "line", "nothing", "line2",
	"k", "K", "\u212a", "s", "S", "\u017f", "é", "É", "e", "ée", "aé", "aéa", "éé", "éa", "€", "€€",
	"😀", "a😀b", "ß", "ẞ", "ss", "İ", "i", "ı", "\uFFFD", "x\uFFFDy",
	"]", "[", "^", "\\", "-", ".", ":", "=", "{", "}", "(", ")", "|", "*", "+", "?", "$",
	"[]", "a^b", "a$b", "x{1,2", "a{", "\\pL", "\\1", "(a)a", "aa1",
	"\t", "a\tb", "a b", " ", "\r", "a\r", "\f", "\v", "\x01", "\x7f",
	"café", "caf\xe9", "\xe9", "a\xe9b", "\x80", "a\x80b", "\xc3", "\xc3a", "a\xc3", "\xe2\x82",
	"\xe2\x82a", "\xc0\xaf", "\xed\xa0\x80", "\xff", "\xfe\xff", "\xf4\x90\x80\x80", "\xe9\xe8",
	"word", "word word", "a_b", "a-b", "x.y", "xzy", "x\u00e9y", "1234", "12ab", "ab12",
}

// conformancePatterns are run on grep besides the patterns of the translation table.
var conformancePatterns = []string{
	`(?i)foo`, `a+?`, `[\D]1`, `(?:foo)bar`, `foo`, `^foo`, `bar$`, `^$`, `^.$`, `^..$`, `^...$`,
	`.`, `..`, `a.a`, `a.b`, `x.y`, `^.*$`, `.+`, `^.+$`, `a.*`, `.*a`, `^[^a]*$`, `[^a]`,
	`^[^a]$`, `[^é]`, `^[^é]+$`, `\D`, `^\D$`, `\S`, `\W`, `^\W$`, `\w\W`, `\W\w`, `\bfoo\b`,
	`\bbar`, `o\b`, `\Bo`, `o\B`, `\B.\B`, `(?i)k`, `(?i)s`, `(?i)é`, `(?i)ss`, `(?i)i`, `(?i)[a-z]+`,
	`(?i)[^k]`, `(?i)^[^s]$`, `(?s).`, `(?s)^.$`, `(?m)^a$`, `(?U)a+`, `a|b`, `^(a|b)$`, `(a|)b`,
	`x(a|)y`, `^(|a)$`, `(a)(b)?`, `a{2}`, `^a{2}$`, `a{2,}`, `a{1,2}`, `^a{0,1}$`, `^(a|b){2,3}$`,
	`^.{2}$`, `^.{3,}$`, `[]]`, `[[]`, `[\\]`, `[\^]`, `[-]`, `[\-x]`, `[^\]]`, `[^-]`, `\{`, `\}`,
	`x\{1,2`, `\(a\)a`, `\\1`, `\\pL`, `\x{FFFD}`, `[\x{FFFD}]`, `[^\x{FFFD}]`, `\x{D800}`,
	`[\x{80}-\x{10FFFF}]`, `^[\x{80}-\x{10FFFF}]$`, `[\x{800}-\x{FFFF}]`, `[é-ü]`, `[à-ÿ]+`,
	`[\x{10000}-\x{10FFFF}]`, `\t`, `\r$`, `[\f\v]`, `\x01`, `\x7f`, `[[:space:]]`, `[[:^print:]]`,
	`[[:punct:]]`, `[[:alnum:]]+$`, `^[[:ascii:]]*$`, `[^[:ascii:]]`, `\n`, `a\nb|c`, `^-`, `-v`,
	`^\d+$`, `\d\w`, `^[\d\s]+$`, `\s`, `word\s+word`, `[a-c]{2}`, `(?i)(ab|cd)+`, `é+`, `(é|e)`,
	`\Q.*\E`, `a$|^b`, `$x`, `x^`, `\A\z`, `(?:)`, `a{0}`, `.*`, `x*`, `caf.`, `caf.$`, `^.*é`,
	`x\{1,2}`, `(^-|1)?x`, `(^a|b)c`, `x(\b-|1)`, `(?:^|\W)foo`, `(?:\bx|y)?z`, `(^-)?1`,
}

// TestGrepAgrees runs every pattern of the table and of conformancePatterns on GNU grep and
// busybox against the sample lines: Translate's ERE selects exactly the valid UTF-8 lines Go
// matches, and on the others no line Go rejects; Prefilter's selects every line Go matches.
func TestGrepAgrees(t *testing.T) {
	file := filepath.Join(t.TempDir(), "lines")
	if err := os.WriteFile(file, []byte(strings.Join(samples, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	patterns := append([]string{}, conformancePatterns...)
	for _, c := range translations {
		patterns = append(patterns, c.pattern)
	}
	gs := greps(t)
	busyboxMissing(t, gs)
	for _, g := range gs {
		t.Run(g.name, func(t *testing.T) {
			for _, p := range patterns {
				checkGrep(t, g, p, file, samples)
			}
		})
	}
}

// checkGrep compares g's answers for pattern's translations with Go's on lines (file's content).
func checkGrep(t *testing.T, g grepper, pattern, file string, lines []string) {
	t.Helper()
	exact, err := Translate(pattern)
	if err != nil {
		if _, perr := Prefilter(pattern); perr == nil {
			t.Fatalf("%q: Translate refuses (%v), Prefilter accepts", pattern, err)
		}
		return
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		t.Fatalf("%q: Translate accepts a pattern regexp rejects: %v", pattern, err)
	}
	pre, err := Prefilter(pattern)
	if err != nil {
		t.Fatalf("%q: Prefilter refuses (%v), Translate accepts", pattern, err)
	}
	for _, s := range []string{exact, pre} {
		if strings.ContainsAny(s, "\x00\n") {
			t.Fatalf("%q: translation %q holds a NUL or a newline", pattern, s)
		}
	}
	gotExact := g.selected(t, exact, file)
	gotPre := g.selected(t, pre, file)
	var wrong, extra, missed []string
	for i, l := range lines {
		n := i + 1
		want := re.MatchString(l)
		switch {
		case utf8.ValidString(l) && gotExact[n] != want:
			wrong = append(wrong, l)
		case gotExact[n] && !want:
			extra = append(extra, l)
		}
		if want && !gotPre[n] {
			missed = append(missed, l)
		}
	}
	some := func(ls []string) string {
		if len(ls) > 4 {
			return fmt.Sprintf("%q and %d more", ls[:4], len(ls)-4)
		}
		return fmt.Sprintf("%q", ls)
	}
	if len(wrong) > 0 {
		t.Errorf("%s: %q: ERE %q answers unlike Go on the valid lines %s", g.name, pattern, exact, some(wrong))
	}
	if len(extra) > 0 {
		t.Errorf("%s: %q: ERE %q selects lines Go does not match: %s", g.name, pattern, exact, some(extra))
	}
	if len(missed) > 0 {
		t.Errorf("%s: %q: prefilter %q misses lines Go matches: %s", g.name, pattern, pre, some(missed))
	}
}

// TestBracketsOnGrep checks that bracket writes every set of the bytes that bracket syntax gives a
// meaning to (and of some random byte sets) so that both greps read it as that set. All sets are
// tried in one pattern: line "NNN" + byte must match ^(NNN[set]|...)$ exactly when byte is in set
// NNN.
func TestBracketsOnGrep(t *testing.T) {
	const specials = "]-^[\\.:=a"
	var sets [][256]bool
	for m := 1; m < 1<<len(specials); m++ {
		var s [256]bool
		for i := range len(specials) {
			if m&(1<<i) != 0 {
				s[specials[i]] = true
			}
		}
		sets = append(sets, s)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var s [256]bool
		for range 1 + rnd.IntN(12) {
			s[1+rnd.IntN(255)] = true
		}
		lo := 1 + rnd.IntN(250)
		for c := lo; c < lo+rnd.IntN(40) && c < 256; c++ {
			s[c] = true
		}
		s['\n'] = false
		sets = append(sets, s)
	}
	var lines strings.Builder
	var alts []string
	var want []bool
	for i, s := range sets {
		b := bracket(s)
		if b == "" {
			continue
		}
		tag := fmt.Sprintf("%03d", i)
		alts = append(alts, tag+b)
		for c := 1; c < 256; c++ {
			if c == '\n' {
				continue
			}
			lines.WriteString(tag + string([]byte{byte(c)}) + "\n")
			want = append(want, s[c])
		}
	}
	pat := "^(" + strings.Join(alts, "|") + ")$"
	file := filepath.Join(t.TempDir(), "bytes")
	if err := os.WriteFile(file, []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	all := strings.Split(strings.TrimSuffix(lines.String(), "\n"), "\n")
	gs := greps(t)
	busyboxMissing(t, gs)
	for _, g := range gs {
		got := g.selected(t, pat, file)
		bad := 0
		for i, w := range want {
			if got[i+1] != w && bad < 20 {
				bad++
				t.Errorf("%s: line %q: selected %v, want %v", g.name, all[i], got[i+1], w)
			}
		}
	}
}

// FuzzTranslate compares Go's regexp with GNU grep and busybox on lines written to a file, for
// every pattern Translate accepts: go test -fuzz=FuzzTranslate ./internal/ere. NUL bytes are taken
// out of the text: files holding them are binary and are not searched.
func FuzzTranslate(f *testing.F) {
	text := strings.Join(samples, "\n")
	for _, p := range conformancePatterns {
		f.Add(p, text)
	}
	for _, c := range translations {
		f.Add(c.pattern, "a\nfoo\né\n\xe9")
	}
	gs := greps(f)
	busyboxMissing(f, gs)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, pattern, text string) {
		if _, err := Translate(pattern); err != nil {
			if _, perr := Prefilter(pattern); perr == nil {
				t.Fatalf("%q: Translate refuses (%v), Prefilter accepts", pattern, err)
			}
			return
		}
		text = strings.ReplaceAll(text, "\x00", "")
		fh, err := os.CreateTemp(dir, "lines")
		if err != nil {
			t.Fatal(err)
		}
		defer os.Remove(fh.Name())
		if _, err := fh.WriteString(text); err != nil {
			t.Fatal(err)
		}
		if err := fh.Close(); err != nil {
			t.Fatal(err)
		}
		var lines []string
		if text != "" {
			lines = strings.Split(strings.TrimSuffix(text, "\n"), "\n")
		}
		for _, g := range gs {
			checkGrep(t, g, pattern, fh.Name(), lines)
		}
	})
}

var randomPatterns = flag.Int("ere.random", 60, "how many random patterns TestGrepRandom tries")

// TestGrepRandom builds random patterns from the constructs that matter here (multibyte and
// invalid bytes, bracket syntax, classes and their negations, anchors, word boundaries, case
// folding, groups and repetition) and checks them as TestGrepAgrees does, on the samples and on
// random short lines. More with -ere.random=N.
func TestGrepRandom(t *testing.T) {
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	seed := rnd.Uint64()
	rnd = rand.New(rand.NewPCG(seed, 7))
	t.Logf("seed %d", seed)
	lines := append([]string{}, samples...)
	alphabet := []string{"a", "b", "é", "€", "😀", "K", "\u212a", "s", "-", "]", "^", "[", "\\", ".", " ", "_", "1", "\xe9", "\x80", "\xc3", "\xe2\x82"}
	for range 150 {
		var b strings.Builder
		for range rnd.IntN(7) {
			b.WriteString(alphabet[rnd.IntN(len(alphabet))])
		}
		lines = append(lines, b.String())
	}
	file := filepath.Join(t.TempDir(), "lines")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gs := greps(t)
	busyboxMissing(t, gs)
	for range *randomPatterns {
		p := randomPattern(rnd, 3)
		for _, g := range gs {
			checkGrep(t, g, p, file, lines)
		}
	}
}

func randomPattern(rnd *rand.Rand, depth int) string {
	pick := func(s ...string) string { return s[rnd.IntN(len(s))] }
	if depth == 0 || rnd.IntN(4) == 0 {
		switch rnd.IntN(6) {
		case 0:
			return regexp.QuoteMeta(pick("a", "b", "é", "€", "😀", "k", "s", "-", "]", "^", "[", "\\", ".", "{", "}", "_", "1", " "))
		case 1:
			return pick(".", `\d`, `\D`, `\w`, `\W`, `\s`, `\S`, `\x{FFFD}`, `[[:punct:]]`, `[^[:alpha:]]`)
		case 2:
			return pick("^", "$", `\A`, `\z`, `\b`, `\B`)
		default:
			var b strings.Builder
			b.WriteString(pick("[", "[^"))
			for range 1 + rnd.IntN(3) {
				b.WriteString(pick("a-c", "é", "€-😀", `\d`, `\w`, `\s`, `\D`, `\]`, `\-`, `\^`, `\[`, `\\`, "[:alpha:]", ".", "-", "K", "à-ÿ"))
			}
			b.WriteString("]")
			return b.String()
		}
	}
	sub := func() string { return randomPattern(rnd, depth-1) }
	switch rnd.IntN(6) {
	case 0:
		return sub() + sub()
	case 1:
		return sub() + "|" + sub()
	case 2:
		return pick("(", "(?:", "(?i:", "(?s:") + sub() + ")"
	case 3:
		return "(?i)" + sub()
	default:
		return "(?:" + sub() + ")" + pick("*", "+", "?", "*?", "{2}", "{0,2}", "{1,}", "{2,3}?")
	}
}
