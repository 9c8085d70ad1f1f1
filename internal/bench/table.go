package main

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// Row is one line of the results table. Every field is already formatted; empty fields print as
// "-".
type Row struct {
	Name     string // what was measured
	N        string // number of samples
	P50      string
	P99      string
	Baseline string // the baseline's name and p50, measured in the same run
	Ratio    string // p50 / baseline p50, with its 95% bootstrap interval
	Target   string
	Result   string // PASS, MISS, or empty for baseline and information rows
}

// Block is one numbered section of the table: a title, its rows, and notes printed under it.
type Block struct {
	Title string
	Rows  []Row
	Notes []string
}

// Table is the whole report: header lines, blocks, footer lines.
type Table struct {
	Header []string
	Blocks []*Block
	Footer []string
}

// AddBlock appends a block and returns it for rows and notes to be added.
func (t *Table) AddBlock(title string) *Block {
	b := &Block{Title: title}
	t.Blocks = append(t.Blocks, b)
	return b
}

// Add appends a row.
func (b *Block) Add(r Row) { b.Rows = append(b.Rows, r) }

// Note appends a note printed under the block's rows.
func (b *Block) Note(format string, args ...any) {
	b.Notes = append(b.Notes, fmt.Sprintf(format, args...))
}

var columns = []string{"measurement", "n", "p50", "p99", "baseline (p50, same run)", "ratio [95% CI]", "target", "result"}

func (r Row) cells() []string {
	c := []string{r.Name, r.N, r.P50, r.P99, r.Baseline, r.Ratio, r.Target, r.Result}
	for i := range c {
		if c[i] == "" {
			c[i] = "-"
		}
	}
	return c
}

// numeric columns are right-aligned.
var rightAligned = map[int]bool{1: true, 2: true, 3: true}

// String renders the table as aligned plain text. Widths are counted in runes, so "µ", "≤" and
// "×" do not break the alignment.
func (t *Table) String() string {
	width := make([]int, len(columns))
	for i, c := range columns {
		width[i] = utf8.RuneCountInString(c)
	}
	for _, b := range t.Blocks {
		for _, r := range b.Rows {
			for i, c := range r.cells() {
				width[i] = max(width[i], utf8.RuneCountInString(c))
			}
		}
	}
	line := func(cells []string) string {
		var sb strings.Builder
		for i, c := range cells {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i > 0 {
				sb.WriteString("  ")
			}
			if rightAligned[i] {
				sb.WriteString(pad + c)
			} else {
				sb.WriteString(c + pad)
			}
		}
		return strings.TrimRight(sb.String(), " ")
	}
	total := len(columns)*2 - 2
	for _, w := range width {
		total += w
	}
	var sb strings.Builder
	for _, h := range t.Header {
		sb.WriteString(h + "\n")
	}
	sb.WriteString("\n" + line(columns) + "\n")
	sb.WriteString(strings.Repeat("=", total) + "\n")
	for i, b := range t.Blocks {
		if i > 0 {
			sb.WriteString("\n")
		}
		sb.WriteString(b.Title + "\n")
		for _, r := range b.Rows {
			sb.WriteString(line(r.cells()) + "\n")
		}
		for _, n := range b.Notes {
			sb.WriteString("    note: " + n + "\n")
		}
	}
	sb.WriteString(strings.Repeat("=", total) + "\n")
	for _, f := range t.Footer {
		sb.WriteString(f + "\n")
	}
	return sb.String()
}

// sig3 formats v with three significant digits (at least none after the point).
func sig3(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// FormatSeconds formats a time in seconds in the unit that suits it, to three significant digits.
func FormatSeconds(s float64) string {
	switch a := math.Abs(s); {
	case math.IsNaN(s):
		return "-"
	case a >= 1:
		return sig3(s) + " s"
	case a >= 1e-3:
		return sig3(s*1e3) + " ms"
	case a >= 1e-6:
		return sig3(s*1e6) + " µs"
	default:
		return sig3(s*1e9) + " ns"
	}
}

// FormatRate formats a throughput in MiB/s.
func FormatRate(mibps float64) string {
	if math.IsNaN(mibps) {
		return "-"
	}
	return sig3(mibps) + " MiB/s"
}

// FormatRatio formats a ratio and its confidence interval: "0.97× [0.93–1.02]".
func FormatRatio(r, lo, hi float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "-"
	}
	s := sig3(r) + "×"
	if !math.IsNaN(lo) && !math.IsNaN(hi) {
		s += " [" + sig3(lo) + "–" + sig3(hi) + "]"
	}
	return s
}

// Verdict is PASS or MISS.
func Verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}
