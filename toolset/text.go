package toolset

import (
	"strings"
	"unicode/utf8"
)

// countLines is len(s.splitlines()) in Python: the line boundaries are \n, \r, \r\n, \v, \f,
// \x1c, \x1d, \x1e, \x85, \u2028 and \u2029, and a final unterminated line counts.
func countLines(s string) int {
	n := 0
	open := false // a line has started and not ended
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch r {
		case '\r':
			if i+1 < len(s) && s[i+1] == '\n' {
				size = 2
			}
			fallthrough
		case '\n', '\v', '\f', '\x1c', '\x1d', '\x1e', '\u0085', '\u2028', '\u2029':
			n++
			open = false
		default:
			open = true
		}
		i += size
	}
	if open {
		n++
	}
	return n
}

// truncateRunes is s[:n] in Python: the first n code points.
func truncateRunes(s string, n int) string {
	i := 0
	for count := 0; i < len(s) && count < n; count++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i]
}

// decodeUTF8 is data.decode("utf-8", errors="replace"): each byte of an invalid sequence
// becomes U+FFFD.
func decodeUTF8(data []byte) string {
	if utf8.Valid(data) {
		return string(data)
	}
	var b strings.Builder
	b.Grow(len(data) + 16)
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		b.WriteRune(r) // utf8.RuneError for an invalid byte
		data = data[size:]
	}
	return b.String()
}
