package toolset

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strings"
)

// LineHash is the hashline tag of one line (without its newline): the first two hex digits of
// the MD5 of its UTF-8 bytes.
func LineHash(line string) string {
	sum := md5.Sum([]byte(line))
	return hex.EncodeToString(sum[:1])
}

// hashlineLines splits text into lines on "\n"; a final "\n" does not start another line. An
// empty text has no lines. A "\r" before a "\n" stays part of its line (and of its hash).
func hashlineLines(text string) (lines []string, trailingNewline bool) {
	if text == "" {
		return nil, false
	}
	trailingNewline = strings.HasSuffix(text, "\n")
	lines = strings.Split(text, "\n")
	if trailingNewline {
		lines = lines[:len(lines)-1]
	}
	return lines, trailingNewline
}

// FormatHashline renders lines [offset, offset+limit) of text as "<n>:<hash>|<line>" joined by
// "\n", with "\n\n... (N more lines)" when lines remain. An empty text is "(empty file)"; an
// offset past the end is an "Error: Offset X exceeds file length (N lines)" text. offset < 0
// means 0 and limit <= 0 means 2000, as podsandbox.Sandbox.Read.
func FormatHashline(text string, offset, limit int) string {
	lines, _ := hashlineLines(text)
	if len(lines) == 0 {
		return "(empty file)"
	}
	if offset < 0 {
		offset = 0
	}
	if limit <= 0 {
		limit = defaultReadLimit
	}
	if offset >= len(lines) {
		return fmt.Sprintf("Error: Offset %d exceeds file length (%d lines)", offset, len(lines))
	}
	end := min(offset+limit, len(lines))
	var b strings.Builder
	for i := offset; i < end; i++ {
		if i > offset {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%d:%s|%s", i+1, LineHash(lines[i]), lines[i])
	}
	if rest := len(lines) - end; rest > 0 {
		fmt.Fprintf(&b, "\n\n... (%d more lines)", rest)
	}
	return b.String()
}

// HashlineEdit is one hashline_edit request. Lines count from 1.
type HashlineEdit struct {
	StartLine   int
	StartHash   string
	NewContent  string  // "" deletes; otherwise split on "\n"
	EndLine     *int    // inclusive end of a range; nil edits one line
	EndHash     *string // checked when EndLine is set
	InsertAfter bool    // insert NewContent after StartLine instead of replacing
}

// ApplyHashline applies e to text. On success it returns the new text and a summary such as
// "Replaced 1 line(s) at line 3"; otherwise the error message (without "Error: "), e.g.
// "Hash mismatch at line 3: expected 'ab', got 'cd'. File may have changed — re-read it first.".
func ApplyHashline(text string, e HashlineEdit) (newText, summary, errMsg string) {
	lines, trailingNewline := hashlineLines(text)
	total := len(lines)
	if e.StartLine < 1 || e.StartLine > total {
		return "", "", fmt.Sprintf("Line %d out of range (file has %d lines)", e.StartLine, total)
	}
	if e.InsertAfter && (e.EndLine != nil || e.EndHash != nil) {
		return "", "", "end_line/end_hash cannot be combined with insert_after"
	}
	if got := LineHash(lines[e.StartLine-1]); got != e.StartHash {
		return "", "", mismatch(e.StartLine, e.StartHash, got)
	}
	end := e.StartLine
	if e.EndLine != nil {
		el := *e.EndLine
		if el < e.StartLine {
			return "", "", fmt.Sprintf("end_line (%d) must be >= start_line (%d)", el, e.StartLine)
		}
		if el > total {
			return "", "", fmt.Sprintf("End line %d out of range (file has %d lines)", el, total)
		}
		if got := LineHash(lines[el-1]); e.EndHash != nil && got != *e.EndHash {
			return "", "", mismatch(el, *e.EndHash, got)
		}
		end = el
	}

	var added []string
	if e.NewContent != "" {
		added = strings.Split(e.NewContent, "\n")
	}
	out := make([]string, 0, total+len(added))
	removed := 0
	if e.InsertAfter {
		out = append(append(append(out, lines[:e.StartLine]...), added...), lines[e.StartLine:]...)
	} else {
		out = append(append(append(out, lines[:e.StartLine-1]...), added...), lines[end:]...)
		removed = end - e.StartLine + 1
	}
	newText = strings.Join(out, "\n")
	if trailingNewline {
		newText += "\n"
	}

	switch {
	case e.InsertAfter:
		summary = fmt.Sprintf("Inserted %d line(s) after line %d", len(added), e.StartLine)
	case len(added) == 0:
		summary = fmt.Sprintf("Deleted %d line(s) at line %d", removed, e.StartLine)
	case removed == len(added):
		summary = fmt.Sprintf("Replaced %d line(s) at line %d", removed, e.StartLine)
	default:
		summary = fmt.Sprintf("Replaced %d line(s) with %d line(s) at line %d", removed, len(added), e.StartLine)
	}
	return newText, summary, ""
}

func mismatch(line int, want, got string) string {
	return fmt.Sprintf("Hash mismatch at line %d: expected '%s', got '%s'. File may have changed — re-read it first.", line, want, got)
}
