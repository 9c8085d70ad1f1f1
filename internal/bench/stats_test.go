package main

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	vals := []float64{15, 20, 35, 40, 50} // the textbook nearest-rank example
	for _, c := range []struct{ p, want float64 }{
		{5, 15}, {30, 20}, {40, 20}, {50, 35}, {100, 50}, {99, 50}, {0, 15},
	} {
		if got := Percentile(vals, c.p); got != c.want {
			t.Errorf("P%v = %v, want %v", c.p, got, c.want)
		}
	}
}

func TestPercentileUnsortedAndUntouched(t *testing.T) {
	vals := []float64{9, 1, 5, 3, 7, 2, 8, 4, 6, 10}
	orig := slices.Clone(vals)
	if got := Percentile(vals, 50); got != 5 {
		t.Errorf("p50 of 1..10 = %v, want 5 (lower middle)", got)
	}
	if got := Percentile(vals, 99); got != 10 {
		t.Errorf("p99 of 10 values = %v, want the maximum", got)
	}
	if got := Percentile(vals, 90); got != 9 {
		t.Errorf("p90 = %v, want 9", got)
	}
	if !slices.Equal(vals, orig) {
		t.Errorf("input modified: %v", vals)
	}
}

func TestPercentileOf100(t *testing.T) {
	var vals []float64
	for i := 100; i >= 1; i-- {
		vals = append(vals, float64(i))
	}
	if got := Percentile(vals, 99); got != 99 {
		t.Errorf("p99 of 1..100 = %v, want 99", got)
	}
	if got := Percentile(vals, 50); got != 50 {
		t.Errorf("p50 of 1..100 = %v, want 50", got)
	}
}

func TestPercentileEdges(t *testing.T) {
	if !math.IsNaN(Percentile(nil, 50)) {
		t.Error("no values: want NaN")
	}
	if got := Percentile([]float64{4}, 99); got != 4 {
		t.Errorf("one value: got %v", got)
	}
}

func TestSeconds(t *testing.T) {
	got := Seconds([]time.Duration{1500 * time.Millisecond, 2 * time.Microsecond})
	if got[0] != 1.5 || got[1] != 2e-6 {
		t.Errorf("got %v", got)
	}
}

func TestRatioCI(t *testing.T) {
	a := []float64{10, 11, 12, 10, 11, 12, 10, 11, 12, 11}
	b := []float64{20, 22, 24, 20, 22, 24, 20, 22, 24, 22}
	lo, hi := RatioCI(a, b, 2000)
	if !(lo <= 0.5 && 0.5 <= hi) || lo < 0.4 || hi > 0.6 {
		t.Errorf("CI [%v, %v] should be near and around 0.5", lo, hi)
	}
	lo2, hi2 := RatioCI(a, b, 2000)
	if lo != lo2 || hi != hi2 {
		t.Error("the interval must be deterministic")
	}
	same := []float64{3, 3, 3}
	if lo, hi := RatioCI(same, same, 100); lo != 1 || hi != 1 {
		t.Errorf("constant samples: [%v, %v], want [1, 1]", lo, hi)
	}
	if lo, _ := RatioCI(nil, b, 10); !math.IsNaN(lo) {
		t.Error("empty sample: want NaN")
	}
}

func TestDiffCI(t *testing.T) {
	a := []float64{12, 13, 14, 12, 13, 14, 12, 13, 14, 13}
	b := []float64{10, 11, 12, 10, 11, 12, 10, 11, 12, 11}
	lo, hi := DiffCI(a, b, 2000)
	if !(lo <= 2 && 2 <= hi) || lo < 0 || hi > 4 {
		t.Errorf("CI [%v, %v] should be near and around 2", lo, hi)
	}
	if lo2, hi2 := DiffCI(a, b, 2000); lo != lo2 || hi != hi2 {
		t.Error("the interval must be deterministic")
	}
	same := []float64{3, 3, 3}
	if lo, hi := DiffCI(same, same, 100); lo != 0 || hi != 0 {
		t.Errorf("constant samples: [%v, %v], want [0, 0]", lo, hi)
	}
	if lo, hi := DiffCI(b, a, 2000); hi > 0 || lo < -4 {
		t.Errorf("a faster first sample: [%v, %v], want a negative interval", lo, hi)
	}
	if _, hi := DiffCI(a, nil, 10); !math.IsNaN(hi) {
		t.Error("empty sample: want NaN")
	}
}
