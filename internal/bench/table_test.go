package main

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFormatSeconds(t *testing.T) {
	for _, c := range []struct {
		s    float64
		want string
	}{
		{1.234, "1.23 s"}, {12.34, "12.3 s"}, {123.4, "123 s"},
		{0.0012345, "1.23 ms"}, {0.04567, "45.7 ms"}, {0.5, "500 ms"},
		{2.5e-6, "2.50 µs"}, {999e-9, "999 ns"}, {0, "0.00 ns"},
		{math.NaN(), "-"},
	} {
		if got := FormatSeconds(c.s); got != c.want {
			t.Errorf("FormatSeconds(%v) = %q, want %q", c.s, got, c.want)
		}
	}
}

func TestFormatRateAndRatio(t *testing.T) {
	if got := FormatRate(123.456); got != "123 MiB/s" {
		t.Errorf("FormatRate = %q", got)
	}
	if got := FormatRatio(0.9712, 0.93, 1.024); got != "0.97× [0.93–1.02]" {
		t.Errorf("FormatRatio = %q", got)
	}
	if got := FormatRatio(3.5, math.NaN(), math.NaN()); got != "3.50×" {
		t.Errorf("FormatRatio without CI = %q", got)
	}
	if got := FormatRatio(math.Inf(1), 0, 0); got != "-" {
		t.Errorf("FormatRatio(Inf) = %q", got)
	}
	if Verdict(true) != "PASS" || Verdict(false) != "MISS" {
		t.Error("Verdict")
	}
}

func TestTableAlignment(t *testing.T) {
	tb := &Table{Header: []string{"head line"}, Footer: []string{"foot line"}}
	b := tb.AddBlock("1. first")
	b.Add(Row{Name: "short", N: "5", P50: "1.00 µs", P99: "2.00 µs", Baseline: "x 1.00 ms", Ratio: "0.50× [0.40–0.60]", Target: "p50 ≤ 10 µs", Result: "PASS"})
	b.Add(Row{Name: "a much longer measurement name", N: "100", P50: "45.7 ms"})
	b.Note("a %s", "note")
	b2 := tb.AddBlock("2. second")
	b2.Add(Row{Name: "z", N: "1234 (+2 failed)", P50: "3 s", Result: "MISS"})
	out := tb.String()

	lines := strings.Split(out, "\n")
	if lines[0] != "head line" || !strings.Contains(out, "\nfoot line\n") {
		t.Fatalf("header or footer missing:\n%s", out)
	}
	var rows []string
	for _, l := range lines {
		if strings.HasPrefix(l, "short") || strings.HasPrefix(l, "a much") || strings.HasPrefix(l, "z ") || strings.HasPrefix(l, "measurement") {
			rows = append(rows, l)
		}
	}
	if len(rows) != 4 {
		t.Fatalf("want the column header and 3 rows, got %d:\n%s", len(rows), out)
	}
	// Every column starts at the same rune offset on every line: check the p50 column's right edge
	// (right-aligned) and the result column's start, counting runes, not bytes.
	tokens := []string{"p50", "1.00 µs", "45.7 ms", "3 s"} // the p50 cell of each line, in order
	p50End := func(l, w string) int {
		i := strings.Index(l, w)
		if i < 0 {
			t.Fatalf("%q not in %q", w, l)
		}
		return utf8.RuneCountInString(l[:i]) + utf8.RuneCountInString(w)
	}
	want := p50End(rows[0], tokens[0])
	for i, l := range rows[1:] {
		if got := p50End(l, tokens[i+1]); got != want {
			t.Errorf("p50 column misaligned (%d vs %d):\n%s", got, want, out)
		}
	}
	if !strings.Contains(out, "    note: a note\n") {
		t.Errorf("note missing:\n%s", out)
	}
	if !strings.Contains(rows[3], " - ") {
		t.Errorf("empty cells should print as -: %q", rows[3])
	}
	for _, l := range lines {
		if strings.HasSuffix(l, " ") {
			t.Errorf("trailing space in %q", l)
		}
	}
}

func TestCompareAndNoise(t *testing.T) {
	v := &variant{name: "v", samples: []float64{0.010, 0.011, 0.012}}
	base := &variant{name: "base", samples: []float64{0.020, 0.022, 0.024}}
	r, ratio, lo, hi := compare("thing", v, base, FormatSeconds, true)
	if r.P50 != "11.0 ms" || r.P99 != "12.0 ms" || r.Baseline != "base 22.0 ms" || r.N != "3" {
		t.Errorf("row = %+v", r)
	}
	if ratio != 0.5 || lo > 0.5 || hi < 0.5 {
		t.Errorf("ratio %v [%v, %v]", ratio, lo, hi)
	}
	blk := &Block{}
	noise(blk, "thing", 0.5, lo, hi)
	if len(blk.Notes) != 1 {
		t.Errorf("a target inside the interval should be noted: %v", blk.Notes)
	}
	noise(blk, "thing", 2, lo, hi)
	if len(blk.Notes) != 1 {
		t.Errorf("a target outside the interval should not be noted: %v", blk.Notes)
	}
	v.errs = []error{errors.New("boom"), errors.New("boom")}
	if v.count() != "3 (+2 failed)" {
		t.Errorf("count = %q", v.count())
	}
	firstErrors(blk, v)
	if !strings.Contains(blk.Notes[1], `2 failed runs, e.g. ["boom"]`) {
		t.Errorf("error note = %q", blk.Notes[1])
	}
}

func TestInterleaveRoundRobin(t *testing.T) {
	var order []string
	mk := func(name string, fail bool) *variant {
		return &variant{name: name, run: func(context.Context) (float64, error) {
			order = append(order, name)
			if fail {
				return 0, errors.New("fail")
			}
			return 1, nil
		}}
	}
	a, b, c := mk("a", false), mk("b", false), mk("c", true)
	if err := interleave(context.Background(), []*variant{a, b}, 1, 3, nil); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, ""); got != "abbaab"+"ba" {
		t.Errorf("order %q: each iteration starts one later", got)
	}
	if len(a.samples) != 3 || len(b.samples) != 3 {
		t.Errorf("warm-up recorded: %d %d", len(a.samples), len(b.samples))
	}
	if err := interleave(context.Background(), []*variant{c}, 1, 1, nil); err == nil {
		t.Error("a failing warm-up must abort")
	}
	c2 := mk("c", true)
	if err := interleave(context.Background(), []*variant{c2}, 0, 2, nil); err != nil || len(c2.errs) != 2 {
		t.Errorf("measured failures are recorded: %v %d", err, len(c2.errs))
	}
}
