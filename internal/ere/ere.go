// Package ere translates a Go regular expression (RE2 syntax, as regexp.Compile reads it) into a
// POSIX extended regular expression that grep -E selects the same lines with, so that a search
// run with grep inside a pod (busybox or GNU grep) answers as one run with Go's regexp does.
//
// The emitted ERE is meant for grep -E in the C locale (LC_ALL=C), where a character is a byte.
// It uses only what busybox grep (glibc's regcomp) and GNU grep read alike: literal bytes,
// backslash escapes of the ERE metacharacters, bracket expressions without classes or escapes,
// groups, alternation, the postfix operators * + ? {n} {n,} {n,m}, the anchors ^ $, and the GNU
// word-boundary operators \b \B. Go reads its input as UTF-8, so every character class and every
// dot becomes the alternation of the UTF-8 byte sequences it accepts.
//
// Only "does this line contain a match" is preserved, which is all grep reports: lazy and greedy
// quantifiers are the same, groups need not capture, and an anchor or a word boundary repeated is
// the same as one. Lines never contain a newline, so ^ and $ mean the same with and without (?m).
//
// What no ERE says as exactly is refused with an *UnsupportedError (errors.Is ErrUnsupported):
// Unicode classes (\pL), NUL bytes, \B where it can match the empty string, an anchor or word
// boundary in a repeated group (busybox's regex engine gets those wrong), and patterns whose
// translation is too large for grep.
package ere

import (
	"errors"
	"fmt"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrUnsupported is matched (errors.Is) by every *UnsupportedError.
var ErrUnsupported = errors.New("not expressible for grep -E")

// UnsupportedError is the refusal of a pattern that Go's regexp accepts (or, for a backreference,
// that RE2 itself lacks) but that no grep -E pattern matches exactly alike.
type UnsupportedError struct {
	Construct string // the part of the pattern refused, e.g. `\pL`
	Hint      string // why, and what to write instead
	Err       error  // the underlying *syntax.Error, for a backreference
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("%s is not supported: %s", e.Construct, e.Hint)
}

// Is makes errors.Is(err, ErrUnsupported) hold.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }

// Unwrap returns the parse error behind the refusal, if any.
func (e *UnsupportedError) Unwrap() error { return e.Err }

// Limits of the emitted ERE. The pattern travels as one argv string (Linux caps those at 128 KiB)
// and glibc's regcomp expands every counted repetition, so both the text and its expansion are
// bounded.
const (
	maxLen      = 32 << 10
	maxExpanded = 256 << 10 // about 40 MB and half a second of regcomp
)

// never is an ERE that matches no line: ^ is an anchor anywhere in an ERE, so nothing precedes it.
const never = "a^"

// Translate returns the ERE that grep -E (LC_ALL=C) selects exactly the lines with that Go's
// regexp matches, for every line that is valid UTF-8 and has no NUL byte. On a line that is not
// valid UTF-8 it never selects a line Go rejects, but it may miss one: Go reads each invalid byte
// as U+FFFD, which a dot or a negated class matches, while the ERE's dot only matches whole UTF-8
// characters (see Prefilter).
//
// A pattern Go rejects returns its *syntax.Error (a backreference such as \1 an *UnsupportedError
// wrapping it); one no ERE expresses exactly returns an *UnsupportedError.
func Translate(pattern string) (string, error) { return translate(pattern, false) }

// Prefilter returns an ERE that grep -E (LC_ALL=C) selects at least every line with that Go's
// regexp matches, valid UTF-8 or not (lines with NUL bytes aside): there a dot and every class
// that holds U+FFFD also match any single byte from 0x80 up. It may select more, so the caller
// keeps only the lines that Go's regexp matches. It refuses exactly what Translate refuses.
func Prefilter(pattern string) (string, error) { return translate(pattern, true) }

func translate(pattern string, superset bool) (string, error) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return "", parseError(err)
	}
	if err := lexical(pattern); err != nil {
		return "", err
	}
	t := translator{superset: superset}
	f, err := t.emit(re)
	if err != nil {
		return "", err
	}
	if f.nb && !f.eps {
		return "", &UnsupportedError{Construct: `\B`, Hint: "here it can match the empty string, " +
			"and grep would also find that empty match between the bytes of one multibyte character; " +
			`put it next to a character, e.g. \Bx or x\B`}
	}
	var s string
	switch {
	case f.kind == kNever:
		s = never
	case f.kind == kEmpty || f.eps: // an unconditional empty match: every line matches
		s = "^"
	default:
		s = f.s
	}
	if len(s) > maxLen || f.weight > maxExpanded {
		return "", &UnsupportedError{Construct: "the pattern", Hint: fmt.Sprintf(
			"its grep -E form is too large (%d bytes, %d expanded; limits %d and %d): "+
				"use smaller repetition counts or classes", len(s), f.weight, maxLen, maxExpanded)}
	}
	return s, nil
}

// parseError makes the parse error of a backreference say what it is; other parse errors are
// returned as they are (*syntax.Error).
func parseError(err error) error {
	var se *syntax.Error
	if errors.As(err, &se) && se.Code == syntax.ErrInvalidEscape && len(se.Expr) == 2 && se.Expr[1] >= '1' && se.Expr[1] <= '9' {
		return &UnsupportedError{Construct: "backreference " + se.Expr, Err: err,
			Hint: "Go's regexp (RE2) has no backreferences; spell out the repeated text, " +
				`or write \\` + se.Expr[1:] + ` for a backslash followed by a digit`}
	}
	return err
}

// lexical refuses Unicode classes, which the parse tree no longer tells apart from an explicit
// bracket: their UTF-8 form is thousands of byte ranges.
func lexical(p string) error {
	for i := 0; i+1 < len(p); i++ {
		if p[i] != '\\' {
			continue
		}
		switch p[i+1] {
		case 'Q': // \Q...\E is literal text
			end := strings.Index(p[i+2:], `\E`)
			if end < 0 {
				return nil
			}
			i += 2 + end + 1
		case 'p', 'P':
			c := p[i : i+2]
			if i+2 < len(p) {
				if p[i+2] == '{' {
					if j := strings.IndexByte(p[i:], '}'); j > 0 {
						c = p[i : i+j+1]
					}
				} else {
					_, n := utf8.DecodeRuneInString(p[i+2:])
					c = p[i : i+2+n]
				}
			}
			return &UnsupportedError{Construct: "Unicode class " + c,
				Hint: "grep -E has no Unicode classes; list the characters in a bracket instead, e.g. [A-Za-zÀ-ÖØ-öø-ÿ]"}
		default:
			i++
		}
	}
	return nil
}

// Kinds of fragment.
const (
	kExpr  = iota // an ERE in s
	kEmpty        // matches only the empty string, with no condition
	kNever        // matches nothing
)

// Precedence of a fragment's text: what it may be combined with without parentheses.
const (
	pAtom    = iota // a byte, an escape, a bracket, a group
	pPostfix        // an atom with * + ? or {}; no further postfix operator may follow
	pConcat         // a concatenation
	pAlt            // an alternation
)

// frag is a translated subexpression.
type frag struct {
	kind   int
	s      string
	prec   int
	zw     bool  // consumes nothing: anchors and word boundaries only
	cond   bool  // holds an anchor or a word boundary
	eps    bool  // can match the empty string with no condition
	nb     bool  // can match the empty string with only \B conditions
	weight int64 // the length of s once glibc expands its counted repetitions
}

var (
	fEmpty = frag{kind: kEmpty, zw: true, eps: true}
	fNever = frag{kind: kNever}
)

func atom(s string) frag { return frag{s: s, prec: pAtom, weight: int64(len(s))} }

func group(f frag) frag {
	if f.prec == pAtom {
		return f
	}
	f.s, f.prec, f.weight = "("+f.s+")", pAtom, f.weight+2
	return f
}

type translator struct {
	superset bool
}

func (t *translator) emit(re *syntax.Regexp) (frag, error) {
	switch re.Op {
	case syntax.OpNoMatch:
		return fNever, nil
	case syntax.OpEmptyMatch:
		return fEmpty, nil
	case syntax.OpLiteral:
		parts := make([]frag, 0, len(re.Rune))
		for _, r := range re.Rune {
			var f frag
			var err error
			if re.Flags&syntax.FoldCase != 0 {
				f, err = t.class(foldOrbit(r))
			} else {
				f, err = t.literal(r)
			}
			if err != nil {
				return f, err
			}
			parts = append(parts, f)
		}
		return concat(parts), nil
	case syntax.OpCharClass:
		return t.class(re.Rune)
	case syntax.OpAnyCharNotNL, syntax.OpAnyChar: // a line has no newline: both are the same
		return t.class([]rune{0, unicode.MaxRune})
	case syntax.OpBeginLine, syntax.OpBeginText:
		return frag{s: "^", prec: pAtom, zw: true, cond: true, weight: 1}, nil
	case syntax.OpEndLine, syntax.OpEndText:
		return frag{s: "$", prec: pAtom, zw: true, cond: true, weight: 1}, nil
	case syntax.OpWordBoundary:
		return frag{s: `\b`, prec: pAtom, zw: true, cond: true, weight: 2}, nil
	case syntax.OpNoWordBoundary:
		return frag{s: `\B`, prec: pAtom, zw: true, cond: true, nb: true, weight: 2}, nil
	case syntax.OpCapture:
		return t.emit(re.Sub[0])
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		sub, err := t.emit(re.Sub[0])
		if err != nil {
			return sub, err
		}
		lo, hi := re.Min, re.Max
		switch re.Op {
		case syntax.OpStar:
			lo, hi = 0, -1
		case syntax.OpPlus:
			lo, hi = 1, -1
		case syntax.OpQuest:
			lo, hi = 0, 1
		}
		return repeat(sub, lo, hi)
	case syntax.OpConcat, syntax.OpAlternate:
		parts := make([]frag, 0, len(re.Sub))
		for _, s := range re.Sub {
			f, err := t.emit(s)
			if err != nil {
				return f, err
			}
			parts = append(parts, f)
		}
		if re.Op == syntax.OpConcat {
			return concat(parts), nil
		}
		return alternate(parts)
	}
	return frag{}, &UnsupportedError{Construct: re.String(), Hint: "unknown construct " + re.Op.String()}
}

// literal is one rune, outside any class.
func (t *translator) literal(r rune) (frag, error) {
	switch {
	case r == 0:
		return frag{}, errNUL
	case r == '\n' || !utf8.ValidRune(r): // no line holds a newline; Go decodes no surrogate
		return fNever, nil
	case r < utf8.RuneSelf:
		return atom(escape(byte(r))), nil
	case r == utf8.RuneError && t.superset:
		return t.class([]rune{r, r})
	}
	s := string(r)
	return frag{s: s, prec: pConcat, weight: int64(len(s))}, nil
}

var errNUL = &UnsupportedError{Construct: `a NUL byte (\x00)`,
	Hint: "grep cannot be given one in its pattern, and files holding NUL bytes are binary, not searched"}

// escape writes byte c (ASCII) so that it stands for itself outside a bracket.
func escape(c byte) string {
	if strings.IndexByte(`.[()*+?{|^$\`, c) >= 0 {
		return `\` + string(c)
	}
	return string(c)
}

// foldOrbit is the class of runes equal to r under simple case folding, as (?i) matches them.
func foldOrbit(r rune) []rune {
	rs := []rune{r, r}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		rs = append(rs, f, f)
	}
	return normalize(rs)
}

func concat(parts []frag) frag {
	var b strings.Builder
	out := frag{kind: kEmpty, prec: pAtom, zw: true, eps: true}
	n := 0
	for _, p := range parts {
		switch p.kind {
		case kNever:
			return fNever
		case kEmpty:
			continue
		}
		if p.prec == pAlt {
			p = group(p)
		}
		nb := (out.eps || out.nb) && (p.eps || p.nb) && (out.nb || p.nb)
		out.eps = out.eps && p.eps
		out.nb = nb && !out.eps
		out.zw = out.zw && p.zw
		out.cond = out.cond || p.cond
		out.weight += p.weight
		out.prec = p.prec
		b.WriteString(p.s)
		n++
	}
	if n == 0 {
		return fEmpty
	}
	out.kind, out.s = kExpr, b.String()
	if n > 1 {
		out.prec = pConcat
	}
	return out
}

func alternate(parts []frag) (frag, error) {
	var alts []frag
	optional := false
	for _, p := range parts {
		switch p.kind {
		case kNever:
			continue
		case kEmpty:
			optional = true
			continue
		}
		alts = append(alts, p)
	}
	if len(alts) == 0 {
		if optional {
			return fEmpty, nil
		}
		return fNever, nil
	}
	out := alts[0]
	if len(alts) > 1 {
		ss := make([]string, len(alts))
		out.weight = 0
		for i, a := range alts {
			ss[i] = a.s
			out.eps = out.eps || a.eps
			out.nb = out.nb || a.nb
			out.zw = out.zw && a.zw
			out.cond = out.cond || a.cond
			out.weight += a.weight + 1
		}
		out.s, out.prec = strings.Join(ss, "|"), pAlt
	}
	if optional {
		return repeat(out, 0, 1)
	}
	return out, nil
}

// errCondLoop refuses an anchor or a word boundary in a repeated group (* + {n,m}; ? is fine):
// glibc's regex engine, busybox grep's, answers wrongly for some of them (it finds no match for
// (^-|1)+ in "--" or "1--", and one for (\b-){2} in "1--").
var errCondLoop = &UnsupportedError{Construct: `an anchor or word boundary (^ $ \A \z \b \B) in a repeated group`,
	Hint: "busybox grep (glibc's regex engine) answers wrongly for some of these; move it out of the group, " +
		"e.g. ^(?:ab)+ for (?:^ab)+, or spell the repetition out: (?:\\bx)(?:\\bx) for (?:\\bx){2}"}

// repeat is f{lo,hi}, hi < 0 meaning no upper bound.
func repeat(f frag, lo, hi int) (frag, error) {
	switch {
	case hi == 0:
		return fEmpty, nil
	case f.kind == kNever:
		if lo == 0 {
			return fEmpty, nil
		}
		return fNever, nil
	case f.kind == kEmpty || f.zw:
		// A condition tested once or many times at one place is the same condition.
		if lo == 0 {
			return fEmpty, nil
		}
		return f, nil
	case lo == 1 && hi == 1:
		return f, nil
	case f.cond && !(lo == 0 && hi == 1):
		return frag{}, errCondLoop
	}
	var op string
	switch {
	case lo == 0 && hi < 0:
		op = "*"
	case lo == 1 && hi < 0:
		op = "+"
	case lo == 0 && hi == 1:
		op = "?"
	case hi < 0:
		op = "{" + strconv.Itoa(lo) + ",}"
	case lo == hi:
		op = "{" + strconv.Itoa(lo) + "}"
	default:
		op = "{" + strconv.Itoa(lo) + "," + strconv.Itoa(hi) + "}"
	}
	g := group(f)
	copies := int64(hi)
	if hi < 0 {
		copies = int64(lo) + 1
	}
	out := frag{kind: kExpr, s: g.s + op, prec: pPostfix, nb: f.nb, cond: f.cond,
		weight: g.weight*max(copies, 1) + int64(len(op))}
	if lo == 0 {
		out.eps, out.nb = true, false
	} else {
		out.eps = f.eps
	}
	return out, nil
}
