package ere

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// byteRange is one position of a UTF-8 byte sequence: any byte from lo to hi.
type byteRange struct{ lo, hi byte }

// class translates a set of runes (sorted, non-overlapping lo, hi pairs, as syntax.Regexp.Rune)
// into the alternation of a bracket for its single bytes and the UTF-8 byte sequences of the
// rest. NUL and newline are left out: no argument carries a NUL and no line holds a newline.
func (t *translator) class(rs []rune) (frag, error) {
	var single [256]bool
	var seqs [][]byteRange
	nul, fffd := false, false
	for i := 0; i+1 < len(rs); i += 2 {
		lo, hi := rs[i], rs[i+1]
		nul = nul || lo == 0
		fffd = fffd || lo <= utf8.RuneError && utf8.RuneError <= hi
		for c := lo; c <= hi && c < utf8.RuneSelf; c++ {
			single[c] = true
		}
		if hi >= utf8.RuneSelf {
			seqs = utf8Seqs(seqs, max(lo, utf8.RuneSelf), hi)
		}
	}
	if t.superset && fffd {
		// Go reads every byte of invalid UTF-8 as U+FFFD.
		for c := 0x80; c <= 0xff; c++ {
			single[c] = true
		}
	}
	single[0], single['\n'] = false, false
	var alts []string
	if b := bracket(single); b != "" {
		alts = append(alts, b)
	}
	for _, s := range mergeSeqs(seqs) {
		var b strings.Builder
		for _, r := range s {
			b.WriteString(rangeText(r))
		}
		alts = append(alts, b.String())
	}
	switch {
	case len(alts) == 0 && nul:
		return frag{}, errNUL
	case len(alts) == 0:
		return fNever, nil
	case len(alts) == 1 && len(seqs) == 0:
		return atom(alts[0]), nil
	case len(alts) == 1:
		s := alts[0]
		return frag{s: s, prec: pConcat, weight: int64(len(s))}, nil
	}
	s := "(" + strings.Join(alts, "|") + ")"
	return atom(s), nil
}

// rangeText is a bracket for a range of bytes from 0x80 up (no bracket syntax is special there).
func rangeText(r byteRange) string {
	if r.lo == r.hi {
		return string([]byte{r.lo})
	}
	return string([]byte{'[', r.lo, '-', r.hi, ']'})
}

// bracket writes a set of bytes as one atom: an escaped byte, or a bracket expression written so
// that busybox and GNU grep read it alike. POSIX brackets have no escapes: "]" must come first,
// "-" last, "^" anywhere but first, and "[" never before ".", ":" or "=". Those four bytes and
// the backslash are written alone, never as the end of a range.
func bracket(set [256]bool) string {
	n := 0
	last := 0
	for c, in := range set {
		if in {
			n++
			last = c
		}
	}
	switch {
	case n == 0:
		return ""
	case n == 1 && last < utf8.RuneSelf:
		return escape(byte(last))
	case n == 1:
		return string([]byte{byte(last)})
	}
	special := func(c int) bool { return strings.IndexByte(`]-^[\`, byte(c)) >= 0 }
	var b strings.Builder
	b.WriteByte('[')
	if set[']'] {
		b.WriteByte(']')
	}
	for c := 0; c < 256; {
		if !set[c] || special(c) {
			c++
			continue
		}
		end := c
		for end+1 < 256 && set[end+1] && !special(end+1) {
			end++
		}
		switch {
		case end == c:
			b.WriteByte(byte(c))
		case end == c+1:
			b.WriteByte(byte(c))
			b.WriteByte(byte(end))
		default:
			b.Write([]byte{byte(c), '-', byte(end)})
		}
		c = end + 1
	}
	if set['\\'] {
		b.WriteByte('\\')
	}
	if set['['] {
		b.WriteByte('[') // followed by "^", "-" or the closing "]"
	}
	if set['^'] {
		if b.Len() == 1 { // only "^" and "-": "-" may lead
			b.WriteString("-^]")
			return b.String()
		}
		b.WriteByte('^')
	}
	if set['-'] {
		b.WriteByte('-')
	}
	b.WriteByte(']')
	return b.String()
}

// normalize sorts rune ranges and merges those that overlap or touch.
func normalize(rs []rune) []rune {
	type rr struct{ lo, hi rune }
	var v []rr
	for i := 0; i+1 < len(rs); i += 2 {
		v = append(v, rr{rs[i], rs[i+1]})
	}
	slices.SortFunc(v, func(a, b rr) int { return int(a.lo - b.lo) })
	var out []rune
	for _, r := range v {
		if n := len(out); n > 0 && r.lo <= out[n-1]+1 {
			out[n-1] = max(out[n-1], r.hi)
			continue
		}
		out = append(out, r.lo, r.hi)
	}
	return out
}

// utf8Seqs appends the UTF-8 byte sequences of the runes lo..hi (lo >= 0x80), surrogates left
// out (Go decodes none), each sequence a list of byte ranges.
func utf8Seqs(out [][]byteRange, lo, hi rune) [][]byteRange {
	if lo > hi {
		return out
	}
	if lo < 0xd800 && hi > 0xdfff {
		out = utf8Seqs(out, lo, 0xd7ff)
		return utf8Seqs(out, 0xe000, hi)
	}
	if lo >= 0xd800 && lo <= 0xdfff {
		lo = 0xe000
	}
	if hi >= 0xd800 && hi <= 0xdfff {
		hi = 0xd7ff
	}
	if lo > hi {
		return out
	}
	// Split where the encoded length changes.
	for _, b := range []rune{0x7ff, 0xffff} {
		if lo <= b && b < hi {
			out = utf8Seqs(out, lo, b)
			return utf8Seqs(out, b+1, hi)
		}
	}
	// Split until every continuation byte spans a whole 0x80-0xbf or the two ends share a prefix.
	n := utf8.RuneLen(lo)
	for i := 1; i < n; i++ {
		m := rune(1)<<(6*i) - 1
		if lo&^m != hi&^m {
			if lo&m != 0 {
				out = utf8Seqs(out, lo, lo|m)
				return utf8Seqs(out, (lo|m)+1, hi)
			}
			if hi&m != m {
				out = utf8Seqs(out, lo, (hi&^m)-1)
				return utf8Seqs(out, hi&^m, hi)
			}
		}
	}
	a, z := []byte(string(lo)), []byte(string(hi))
	s := make([]byteRange, len(a))
	for i := range a {
		s[i] = byteRange{a[i], z[i]}
	}
	return append(out, s)
}

// mergeSeqs joins sequences that differ only in the range of one position, when the ranges
// touch, so that e.g. a whole block of three-byte characters is one sequence.
func mergeSeqs(seqs [][]byteRange) [][]byteRange {
	out := slices.Clone(seqs)
	for changed := true; changed; {
		changed = false
	outer:
		for i := 0; i < len(out); i++ {
			for j := i + 1; j < len(out); j++ {
				if k, ok := mergeable(out[i], out[j]); ok {
					m := slices.Clone(out[i])
					m[k] = byteRange{min(out[i][k].lo, out[j][k].lo), max(out[i][k].hi, out[j][k].hi)}
					out[i] = m
					out = slices.Delete(out, j, j+1)
					changed = true
					break outer
				}
			}
		}
	}
	return out
}

// mergeable reports the one position where a and b differ, if their ranges there touch.
func mergeable(a, b []byteRange) (int, bool) {
	if len(a) != len(b) {
		return 0, false
	}
	k := -1
	for i := range a {
		if a[i] != b[i] {
			if k >= 0 {
				return 0, false
			}
			k = i
		}
	}
	if k < 0 {
		return 0, false
	}
	if a[k].hi+1 == b[k].lo || b[k].hi+1 == a[k].lo {
		return k, true
	}
	return 0, false
}
